"""Finding the final answer in a model response.

Strict mode takes only a committed final answer, and the one committed to last wins: the final
``\\boxed{...}`` (or ``\\fbox``, joined with the boxes only separators divide from it), the last
"The (final) answer is ..." / "Answer: ..." and the last ``#### ...``, whichever starts later; a
phrase or ``####`` after the box counts only when it names a value. Quoted and withdrawn
commitments do not count (:mod:`verifiers.commit`); "Answer: <sentence>" gives the value the
sentence ends on. An unclosed last box means no answer (a truncated response). A bare answer
that is a short statement ("We find that $x < 3$.") gives the value it ends on (:func:`bare_answer`).

Flexible mode then tries a closing statement: a last line that ends by stating a value after a
copula ("so the probability is $\\frac{2}{7}$.", "The total is 2,300 dollars."); then the last
number in the response, like lm-eval's flexible-extract for GSM8K, widened to the whole fraction
it belongs to and refused when it is an exponent or subscript. :func:`find_answer` also says which
of these found the answer (``boxed``, ``answer_phrase``, ``hashes``, ``closing_statement``,
``last_number``). Every scan here is linear in the input length.
"""
from __future__ import annotations

import re

from verifiers.commit import asked, boxes, checking, final_box, quoted, stated_value, trailing_group, withdrawn

TASKS = ("math", "number")
MODES = ("strict", "flexible")
MAX_BARE_CHARS = 1_000
_CLOSING_CHARS = 300
_SEGMENT_CHARS = 4 * MAX_BARE_CHARS

_ANSWER_PHRASE = re.compile(r"(?i)\banswer\b[*_\s]*(?:is\b[*_\s]*:?|:|=)[*_\s]*")
_HASHES = re.compile(r"####[ \t]*")
_DIGITS = r"[0-9](?:[0-9]|(?:,|\{,\}|,\\!\s?)(?=[0-9]))*"
_NUMBER = re.compile(rf"-?\$?{_DIGITS}(?:\.[0-9]+)?")
_FRACTION_TAIL = re.compile(r"\s*/\s*[0-9]+|\s+[0-9]+\s*/\s*[0-9]+|\s*\\[dt]?frac\s*(?:\{[0-9]+\}\{[0-9]+\}|[0-9]{2})")
_FRACTION = re.compile(r"-?(?:[0-9]+\s*)?\\[dt]?frac\s*(?:\{-?[0-9]+\}\{[0-9]+\}|[0-9]{2})|-?[0-9]+(?:\s+[0-9]+)?\s*/\s*[0-9]+")
_STATED_NUMBER = re.compile(rf"(?:\\?\$)?(?P<n>-?{_DIGITS}(?:\.[0-9]+)?)\$?(?:\s+[A-Za-z]+\.?){{0,3}}$")
_COPULA = re.compile(r"(?i)(?:\b(?:is|are|was|were|equals|be|becomes)|=|:)[*_\s]*$")
_PROSE_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")
_TEXT_GROUP = re.compile(r"\\(?:text|mbox|textbf|mathrm|textrm)\{[^{}]*\}")
_NAMES_VALUE = re.compile(r"[0-9$\\]")
_TRAILING_UNITS = re.compile(r"(?<=[0-9$}])(?:\s+[A-Za-z]+\.?){1,3}\s*$")
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


def last_boxed(text: str) -> tuple[int, str | None] | None:
    """(start, content) of the last outermost box command (boxes nested in it are part of its
    content); content is None when that box is unclosed. Linear in ``len(text)``."""
    found = boxes(text)
    return (found[-1][0], found[-1][2]) if found else None


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


def _committed(text: str, pattern: re.Pattern, segment, after: int) -> tuple[int, str] | None:
    """(start, answer) of the last match of ``pattern`` that is not quoted, withdrawn or asked; with
    a box at ``after`` (>= 0), only a match after it, not in a check, that names a value counts."""
    for m in reversed(list(pattern.finditer(text))):
        if m.start() <= after:
            return None
        if quoted(text, m.start()) or withdrawn(text, m.end()) or asked(text, m.end()):
            continue
        if after >= 0 and checking(text, m.start()):
            continue
        answer = segment(text[m.end():m.end() + _SEGMENT_CHARS])
        if after < 0 or _reads_as_value(answer):
            return m.start(), answer
    return None


def _reads_as_value(answer: str) -> bool:
    """Whether an answer after a box names a value ("$8$", "10,455 dollars") rather than remarking
    on it ("correct", "in simplest form since 7 is prime")."""
    core = _TRAILING_UNITS.sub("", answer)
    core = re.sub(r"\$[^$]*\$|\\\(.*?\\\)|\\text\{[^{}]*\}", " ", core)
    return _NAMES_VALUE.search(answer) is not None and not _PROSE_WORD.search(core)


def _phrase_segment(tail: str) -> str:
    answer = _math_segment(tail)
    return stated_value(answer, committed=True) or answer


def _hashes_segment(tail: str) -> str:
    return _first_line(tail).strip()


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
    """Committed answer: the last of the final box (with the boxes joined to it), "answer is ..."
    and "#### ..."; an unclosed last box means no answer (a truncated response)."""
    box = final_box(text)
    if box is not None and box[1] is None:
        return None
    after = box[0] if box is not None else -1
    found = [c + (how,) for c, how in ((_committed(text, _ANSWER_PHRASE, _phrase_segment, after), "answer_phrase"),
                                        (_committed(text, _HASHES, _hashes_segment, after), "hashes"))
             if c is not None]
    if box is not None:
        found.append((box[0], box[1], "boxes" if box[2] else "boxed"))
    _, answer, how = max(found, key=lambda c: c[0]) if found else (0, None, None)
    answer = _for_task(answer, task)
    return None if answer is None else (answer, how)


def bare_answer(text: str) -> str:
    """A bare answer as it is compared: the value a short statement ends on ("We find that
    $x < 3$.", see :func:`verifiers.commit.stated_value`), else the whole text."""
    return stated_value(text) or text.strip()


def _closing_statement(text: str) -> str | None:
    """The value a response's last line ends by stating after a copula: "... is $x$." or
    "The total is 2,300 dollars."; None for anything else."""
    line = text[-_CLOSING_CHARS:].rstrip().rsplit("\n", 1)[-1].strip().rstrip(".!*").rstrip()
    group = trailing_group(line)
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
