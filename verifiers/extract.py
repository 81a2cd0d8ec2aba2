"""Finding the final answer in a model response.

Strict mode takes only a committed final answer: the last ``\\boxed{...}`` (or ``\\fbox``);
without a box, the last "The (final) answer is ..." / "Answer: ..." or the last ``#### ...``,
whichever starts later. An unclosed last box means no answer (a truncated response).

Flexible mode then tries a closing statement: a last line that ends by stating a value after a
copula ("so the probability is $\\frac{2}{7}$.", "The total is 2,300 dollars."); then the last
number in the response, like lm-eval's flexible-extract for GSM8K, widened to the whole fraction
it belongs to and refused when it is an exponent or subscript. :func:`find_answer` also says which
of these found the answer (``boxed``, ``answer_phrase``, ``hashes``, ``closing_statement``,
``last_number``). Every scan here is linear in the input length.
"""
from __future__ import annotations

import re

TASKS = ("math", "number")
MODES = ("strict", "flexible")
MAX_BARE_CHARS = 1_000
_CLOSING_CHARS = 300

_BOX_COMMANDS = (r"\boxed", r"\fbox")
_ANSWER_PHRASE = re.compile(r"(?i)\banswer\b[*_\s]*(?:is\b[*_\s]*:?|:|=)[*_\s]*")
_HASHES = re.compile(r"####[ \t]*")
_DIGITS = r"[0-9](?:[0-9]|(?:,|\{,\}|,\\!)(?=[0-9]))*"
_NUMBER = re.compile(rf"-?\$?{_DIGITS}(?:\.[0-9]+)?")
_FRACTION_TAIL = re.compile(r"\s*/\s*[0-9]+|\s+[0-9]+\s*/\s*[0-9]+|\s*\\[dt]?frac\s*(?:\{[0-9]+\}\{[0-9]+\}|[0-9]{2})")
_FRACTION = re.compile(r"-?(?:[0-9]+\s*)?\\[dt]?frac\s*(?:\{-?[0-9]+\}\{[0-9]+\}|[0-9]{2})|-?[0-9]+(?:\s+[0-9]+)?\s*/\s*[0-9]+")
_STATED_NUMBER = re.compile(rf"(?:\\?\$)?(?P<n>-?{_DIGITS}(?:\.[0-9]+)?)\$?(?:\s+[A-Za-z]+\.?){{0,3}}$")
_COPULA = re.compile(r"(?i)(?:\b(?:is|are|was|were|equals|be|becomes)|=|:)[*_\s]*$")
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
    """The number a GSM8K commitment names: after its last '=', at its start, together with a
    fraction it begins (``3 1/2``, ``2/3``, ``3\\frac{1}{2}``), never just that fraction's first part."""
    segment = segment.rsplit("=", 1)[-1].strip().replace("\\$", "$")
    m = _NUMBER.match(segment)
    if not m:
        return None
    tail = _FRACTION_TAIL.match(segment, m.end())
    return segment[:tail.end()] if tail else m.group()


def _for_task(answer: str | None, task: str) -> str | None:
    if answer is None or not answer.strip():
        return None
    answer = answer.strip()
    if task == "number" and not re.fullmatch(r"[-+$\\0-9.,\s{}!]+", answer):
        return _gsm8k_number(answer) or answer
    return answer


def _strict(text: str, task: str) -> tuple[str, str] | None:
    """Committed answer: the last box wins; else the later of '#### ...' and 'answer is ...'."""
    boxed = last_boxed(text)
    if boxed is not None:
        answer, how = boxed[1], "boxed"
    else:
        found = [c + (how,) for c, how in ((_phrase_candidate(text), "answer_phrase"),
                                            (_hashes_candidate(text), "hashes")) if c is not None]
        _, answer, how = max(found, key=lambda c: c[0]) if found else (0, None, None)
    answer = _for_task(answer, task)
    return None if answer is None else (answer, how)


def _trailing_group(line: str) -> tuple[int, str] | None:
    """(start, content) of a ``$...$`` / ``\\(...\\)`` / ``\\[...\\]`` group that ends ``line``."""
    for opener, closer in (("$$", "$$"), (r"\(", r"\)"), (r"\[", r"\]"), ("$", "$")):
        if line.endswith(closer) and not line.endswith("\\" + closer):
            start = line.rfind(opener, 0, len(line) - len(closer))
            if start >= 0 and not line[:start].endswith("\\"):
                return start, line[start + len(opener):len(line) - len(closer)]
    return None


def _closing_statement(text: str) -> str | None:
    """The value a response's last line ends by stating after a copula: "... is $x$." or
    "The total is 2,300 dollars."; None for anything else."""
    line = text[-_CLOSING_CHARS:].rstrip().rsplit("\n", 1)[-1].strip().rstrip(".!*").rstrip()
    group = _trailing_group(line)
    if group is not None:
        before, value = line[:group[0]], group[1]
    else:
        m = _STATED_NUMBER.search(line)
        if m is None:
            return None
        before, value = line[:m.start()], m["n"]
    return value if value.strip() and _COPULA.search(before) else None


def _last_number(text: str) -> str | None:
    """The last number, widened to the fraction it is part of; None when it is an exponent,
    a subscript or a piece of a fraction that cannot be read whole."""
    last = None
    for last in _NUMBER.finditer(text):
        pass
    if last is None:
        return None
    before, after = text[max(0, last.start() - 6):last.start()], text[last.end():last.end() + 2]
    if re.search(r"[\^_]\{?$", before):
        return None
    if re.search(r"(?:/\s*|\}\{|\\[dt]?frac\s*\{?)$", before) or re.match(r"\s*/|\}\{", after):
        for m in _FRACTION.finditer(text, max(0, last.start() - 40), last.end() + 40):
            if m.start() <= last.start() and last.end() <= m.end():
                return m.group()
        return None
    return last.group().replace("$", "").rstrip(".,") or None


def find_answer(response: str, task: str = "math", mode: str = "strict") -> tuple[str, str] | None:
    """(answer, how it was found) for a whole response, or None when it commits to none."""
    check_task_mode(task, mode)
    found = _strict(response, task)
    if found is not None or mode == "strict":
        return found
    answer = _for_task(_closing_statement(response), task)
    if answer is not None:
        return answer, "closing_statement"
    answer = _last_number(response)
    return None if answer is None else (answer, "last_number")


def extract_answer(response: str, task: str = "math", mode: str = "strict") -> str | None:
    """The final answer in ``response``, or None when it commits to none.

    ``mode="strict"`` accepts only committed forms (last ``\\boxed{}``, "The answer is ...",
    ``#### N``); ``mode="flexible"`` falls back to a closing statement, then the last number.
    """
    found = find_answer(response, task, mode)
    return None if found is None else found[0]
