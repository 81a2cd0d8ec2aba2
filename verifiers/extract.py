"""Finding the final answer in a model response.

Strict mode takes only a committed final answer: the last ``\\boxed{...}`` (or ``\\fbox``);
without a box, the last "The (final) answer is ..." / "Answer: ..." or the last ``#### ...``,
whichever starts later. An unclosed last box means no answer (a truncated response). Flexible mode falls back to the last number in the response,
like lm-eval's flexible-extract for GSM8K. Every scan here is linear in the input length.
"""
from __future__ import annotations

import re

TASKS = ("math", "gsm8k")
MODES = ("strict", "flexible")
MAX_BARE_CHARS = 1_000

_BOX_COMMANDS = (r"\boxed", r"\fbox")
_ANSWER_PHRASE = re.compile(r"(?i)\banswer\b[*_\s]*(?:is\b[*_\s]*:?|:|=)[*_\s]*")
_HASHES = re.compile(r"####[ \t]*")
_NUMBER = re.compile(r"-?\$?[0-9][0-9,]*(?:\.[0-9]+)?")
_PROSE_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")
_TEXT_GROUP = re.compile(r"\\(?:text|mbox|textbf|mathrm|textrm)\{[^{}]*\}")
_COMMIT_MARK = re.compile(r"\\boxed|\\fbox|####|(?i:\banswer\b[*_\s]*(?:is\b|:|=))")


def check_task_mode(task: str, mode: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")


def is_response(text: str) -> bool:
    """Whether ``text`` is a whole model response rather than a bare final answer."""
    text = text.strip()
    if "\n" in text or len(text) > MAX_BARE_CHARS or _COMMIT_MARK.search(text):
        return True
    prose = _TEXT_GROUP.sub(" ", text)
    return len(_PROSE_WORD.findall(prose)) >= 4


def matching_brace(text: str, open_index: int) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``open_index`` (escaped braces skipped), or None."""
    depth = 0
    i = open_index
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _next_box(text: str, pos: int) -> int:
    found = [i for i in (text.find(cmd, pos) for cmd in _BOX_COMMANDS) if i >= 0]
    return min(found) if found else -1


def last_boxed(text: str) -> tuple[int, str | None] | None:
    """(start, content) of the last outermost box command (boxes nested in it are part of its
    content); content is None when that box is unclosed. Linear in ``len(text)``."""
    last = None
    pos = 0
    while True:
        start = _next_box(text, pos)
        if start < 0:
            return last
        i = start + (len(r"\boxed") if text.startswith(r"\boxed", start) else len(r"\fbox"))
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            end = matching_brace(text, i)
            if end is None:
                return start, None
            last, pos = (start, text[i + 1:end]), end + 1
        else:
            token = re.match(r"[^\s$]+", text[i:i + 200])
            last = (start, token.group() if token else None)
            pos = i + (len(token.group()) if token else 0) + 1


def _first_line(text: str) -> str:
    end = text.find("\n")
    return text if end < 0 else text[:end]


def _math_segment(tail: str) -> str:
    """The answer at the start of ``tail``: a $...$ / \\(...\\) group, else the rest of the line."""
    tail = tail.lstrip()
    for opener, closer in (("$$", "$$"), ("$", "$"), (r"\(", r"\)"), (r"\[", r"\]")):
        if tail.startswith(opener):
            end = tail.find(closer, len(opener))
            if end > 0:
                return tail[len(opener):end]
    line = _first_line(tail)
    line = re.split(r"\.\s+(?=[A-Z])|\.\s*$|\s+I hope\b", line, maxsplit=1)[0]
    return line.strip().strip("*").strip()


def _phrase_candidate(text: str) -> tuple[int, str] | None:
    last = None
    for last in _ANSWER_PHRASE.finditer(text):
        pass
    if last is None:
        return None
    return last.start(), _math_segment(text[last.end():])


def _hashes_candidate(text: str) -> tuple[int, str] | None:
    last = None
    for last in _HASHES.finditer(text):
        pass
    if last is None:
        return None
    return last.start(), _first_line(text[last.end():]).strip()


def _gsm8k_number(segment: str) -> str | None:
    """The number a GSM8K commitment names: after its last '=', at its start."""
    segment = segment.rsplit("=", 1)[-1].strip()
    m = _NUMBER.match(segment.replace("\\$", "$"))
    return m.group() if m else None


def _strict(text: str, task: str) -> str | None:
    """Committed answer: the last box wins; else the later of '#### ...' and 'answer is ...'."""
    boxed = last_boxed(text)
    if boxed is not None:
        answer = boxed[1]
    else:
        found = [c for c in (_phrase_candidate(text), _hashes_candidate(text)) if c is not None]
        answer = max(found, key=lambda c: c[0])[1] if found else None
    if answer is None or not answer.strip():
        return None
    answer = answer.strip()
    if task == "gsm8k" and not re.fullmatch(r"[-+$\\0-9.,\s{}]+", answer):
        return _gsm8k_number(answer) or answer
    return answer


def _last_number(text: str) -> str | None:
    last = None
    for last in _NUMBER.finditer(text):
        pass
    if last is None:
        return None
    return last.group().replace("$", "").rstrip(".,") or None


def extract_answer(response: str, task: str = "math", mode: str = "strict") -> str | None:
    """The final answer in ``response``, or None when it commits to none.

    ``mode="strict"`` accepts only committed forms (last ``\\boxed{}``, "The answer is ...",
    ``#### N``); ``mode="flexible"`` falls back to the last number in the response.
    """
    check_task_mode(task, mode)
    answer = _strict(response, task)
    if answer is None and mode == "flexible":
        answer = _last_number(response)
    return answer
