"""Which boxes and short statements a response commits to (the rules of docs/verifiers.md).

* A box or answer phrase followed in its own clause, or in a next sentence that refers back to
  it ("This is impossible."), by a word that withdraws it ("x = \\boxed{3}, which is
  impossible"), one inside quotation marks on its line (quoted from the question), and an answer
  phrase in a question ("Is the answer 24?") are not commitments; nor, after a box, is an answer
  phrase in a check ("We may check our answer: ...").
* Several boxes count together when only separators stand between them: commas, semicolons,
  "and"/"or", math delimiters, spacing, at most one label word on either side of the separator
  (``\\boxed{1} red and \\boxed{2} blue``) or a variable with ``=`` before the next box
  (``$x = \\boxed{2}$ and $y = \\boxed{3}$``); a label that is a step word ("then", "so", ...)
  breaks the run. Identical boxes count once.
* A short statement ("We find that $x < 3$.", "The largest $n$ is 34") states the value it ends
  on: a math group or a number (with up to three unit words), when its lead-in ends with a
  stating word (a copula, "that", "answer", "has", "gets", "makes", ... or a colon; not needed
  after "Final Answer:"), and has no digit, no math outside ``$...$`` (``AB = 5`` is an
  equation, not a statement), no question mark and no hedge, negation or comparison ("not",
  "about", "between", "or", "more", "half", "divided", ...).

Everything here is a linear scan of the text; nothing is evaluated.
"""
from __future__ import annotations

import re

_BOX_COMMANDS = (r"\boxed", r"\fbox")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|\n")
_WITHDRAWN = re.compile(
    r"(?i)\b(?:impossible|contradict(?:s|ion)?|invalid|not valid|not possible|extraneous|reject(?:ed)?|wrong"
    r"|incorrect|not correct|not the answer|does(?:n't| not) (?:work|satisfy|hold))\b")
_WITHDRAW_WINDOW = 160
_BACK_REFERENCE = re.compile(r"(?i)(?:(?:but|however|wait|hmm|no|oops),? )?(?:this|that|it|which)\b")
_CLAUSE_END = re.compile(r"[.!?;](?:\s|$)|\n|\(|\b(?:because|since)\b")
_CHECKING = re.compile(r"(?i)\b(?:check|checking|verify|verifying|confirm|confirming)\b")
_QUOTE = re.compile(r"``|''|\"|\u201c|\u201d")
_GAP_DROP = re.compile(r"\$|\\[()\[\]]|\\q?quad(?![A-Za-z])|\\[,;:! ]|\\text\{\s*(and|or|,)\s*\}|~")
_LABEL = r"[A-Za-z]{1,15}"
_GAP = re.compile(
    rf"\s*(?:(?:(?P<after>{_LABEL})\s*)?(?:,|;|\band\b|\bor\b)(?:\s*\b(?:and|or)\b)?\s*"
    rf"(?:(?P<before>{_LABEL})\s+|(?P<var>[A-Za-z](?:_\{{?[A-Za-z0-9]+\}}?)?)\s*=\s*)?)?")
_STEP_WORDS = frozenset("""then so thus hence therefore but not wait actually also finally final answer is are was
    were gives giving get gets becomes which that correct wrong instead check hmm no yes step case when where if
    since because next first second last now we it this""".split())
_HEDGE = re.compile(
    r"(?i)\b(?:not|no|never|none|isn't|aren't|cannot|can't|if|unless|maybe|perhaps|possibly|probably|approximately"
    r"|about|around|roughly|nearly|almost|between|than|least|most|over|under|except|or|wrong|incorrect|guess"
    r"|suppose|assume|try|whether|either|more|less|greater|fewer|smaller|larger|bigger|exceeds?|above|below|within"
    r"|beyond|up|half|twice|double|triple|times|divided|multiplied|plus|minus|per)\b|\?")
_STATING = re.compile(r"(?i)(?:\b(?:is|are|was|were|be|becomes|equals|remains|that|answer|has|have|had|get|gets|got"
                      r"|obtain|find|makes|made|earns|costs|gives|yields)|:)[*_\s]*$")
_NOT_PROSE = re.compile(r"[=<>+^_|\\{}]")
_PROSE_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")
_STATED_NUMBER = re.compile(
    r"(?<![A-Za-z0-9\\^_{.,])(?:\\?\$)?(?P<n>-?[0-9](?:[0-9]|(?:,|\{,\}|,\\!\s?)(?=[0-9]))*(?:\.[0-9]+)?)\$?"
    r"(?:\s+[A-Za-z]+\.?){0,3}$")


def matching_brace(text: str, open_index: int) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``open_index`` (escaped braces skipped), or None."""
    depth = 0
    i = open_index
    while i < len(text):
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


def boxes(text: str) -> list[tuple[int, int, str | None]]:
    """(start, end, content) of each outermost box command in order; content is None (and end
    the text's length) for an unclosed box, which is then the last one. Linear in ``len(text)``."""
    found = []
    pos = 0
    while True:
        starts = [i for i in (text.find(cmd, pos) for cmd in _BOX_COMMANDS) if i >= 0]
        if not starts:
            return found
        start = min(starts)
        i = start + (len(r"\boxed") if text.startswith(r"\boxed", start) else len(r"\fbox"))
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            end = matching_brace(text, i)
            if end is None:
                found.append((start, len(text), None))
                return found
            found.append((start, end + 1, text[i + 1:end]))
            pos = end + 1
        else:
            token = re.match(r"[^\s$]+", text[i:i + 200])
            end = i + (len(token.group()) if token else 0)
            if token:
                found.append((start, end, token.group()))
            pos = end + 1


def _withdraws(clause: str) -> bool:
    m = _WITHDRAWN.search(clause)
    return m is not None and not re.search(r"[0-9$\\]", clause[:m.start()])


def withdrawn(text: str, end: int) -> bool:
    """Whether the rest of the clause after ``end`` (up to a sentence end, a parenthesis,
    "because" or "since"), or a next sentence that refers back to it ("This is impossible."),
    takes the value back before naming any other value (digit or math)."""
    window = text[end:end + _WITHDRAW_WINDOW].lstrip(" $}")
    stop = _CLAUSE_END.search(window)
    if stop is None:
        return _withdraws(window)
    if _withdraws(window[:stop.start()]):
        return True
    following = window[stop.end():].lstrip()
    if not _SENTENCE_END.match(stop.group()) or not _BACK_REFERENCE.match(following):
        return False
    after = _CLAUSE_END.search(following)
    return _withdraws(following if after is None else following[:after.start()])


def asked(text: str, end: int) -> bool:
    """Whether the sentence of an answer phrase ending at ``end`` is a question ("Is it a
    coincidence that the answer is 24?")."""
    stop = re.search(r"[.!?](?:\s|$)|\n", text[end:end + _WITHDRAW_WINDOW])
    return stop is not None and stop.group().startswith("?")


def checking(text: str, start: int) -> bool:
    """Whether the sentence before ``start`` is checking a value ("We may check our answer: ...")."""
    before = text[max(0, start - _WITHDRAW_WINDOW):start]
    ends = list(_SENTENCE_END.finditer(before))
    return _CHECKING.search(before[ends[-1].end():] if ends else before) is not None


def quoted(text: str, start: int) -> bool:
    """Whether ``start`` lies inside quotation marks opened earlier on its line (``"..."``,
    TeX's ````...''`` or ``"...''``, and curly quotes)."""
    inside = False
    for mark in _QUOTE.findall(text, text.rfind("\n", 0, start) + 1, start):
        inside = (not inside) if mark == '"' else mark in ("``", "\u201c")
    return inside


def _joins(gap: str) -> bool:
    m = _GAP.fullmatch(_GAP_DROP.sub(lambda g: f" {g[1]} " if g[1] else " ", gap))
    return m is not None and not any(w and w.lower() in _STEP_WORDS for w in (m["after"], m["before"]))


def final_box(text: str) -> tuple[int, str | None, bool] | None:
    """(start, content) of the boxed answer a response commits to last: the last box that is
    neither withdrawn nor quoted, joined with the boxes before it that only separators divide
    from it, and whether that took several boxes; content is None when the last box is unclosed
    (a truncated response)."""
    found = boxes(text)
    if found and found[-1][2] is None:
        return found[-1][0], None, False
    kept = [i for i, (start, end, _) in enumerate(found) if not quoted(text, start) and not withdrawn(text, end)]
    if not kept:
        return None
    first = kept[-1]
    kept_set = set(kept)
    while first - 1 in kept_set and _joins(text[found[first - 1][1]:found[first][0]]):
        first -= 1
    contents = list(dict.fromkeys(content.strip() for _, _, content in found[first:kept[-1] + 1]))
    return found[first][0], ", ".join(contents), len(contents) > 1


def trailing_group(line: str) -> tuple[int, str] | None:
    """(start, content) of a ``$...$`` / ``\\(...\\)`` / ``\\[...\\]`` group that ends ``line``."""
    for opener, closer in (("$$", "$$"), (r"\(", r"\)"), (r"\[", r"\]"), ("$", "$")):
        if line.endswith(closer) and not line.endswith("\\" + closer):
            start = line.rfind(opener, 0, len(line) - len(closer))
            if start >= 0 and not line[:start].endswith("\\"):
                return start, line[start + len(opener):len(line) - len(closer)]
    return None


def stated_value(statement: str, committed: bool = False) -> str | None:
    """The value a one-sentence statement ends on, or None when it does not end on one or its
    lead-in is not plain prose (see the module docstring). A ``committed`` statement (one after
    "Final Answer:") needs no stating word before its value."""
    if not _PROSE_WORD.search(statement):
        return None  # plain numbers and formulas leave at once
    line = statement.strip().rstrip(".!*").rstrip()
    if "\n" in line or _SENTENCE_END.search(line):
        return None
    group = trailing_group(line)
    if group is not None:
        lead, value = line[:group[0]], group[1]
    else:
        m = _STATED_NUMBER.search(line)
        if m is None:
            return None
        lead, value = line[:m.start()], m["n"]
    outside = re.sub(r"\$[^$]*\$|\\\(.*?\\\)", " ", lead)
    if not value.strip() or not _PROSE_WORD.search(outside) or not (committed or _STATING.search(lead)) or _HEDGE.search(lead) \
            or _NOT_PROSE.search(outside) or re.search(r"[0-9]", lead):
        return None
    return value.strip()
