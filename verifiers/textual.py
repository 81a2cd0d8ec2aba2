"""The answer formats without arithmetic: ``choice``, ``label`` and ``exact`` (see :mod:`verifiers.formats`).

Strict extraction takes the committed answer only: the last ``\\boxed{...}``, else the rest of the line after the
last "The answer is" / "Answer:". Flexible extraction then reads the response's last line, then (choice and
label) the last option or label the response names. A committed answer that names two options or two labels
("(A) or (B)", "yes and no") is no answer; a label must start the committed answer, so "not True" is not True.
Every scan is linear in the input; inputs pass :mod:`verifiers.sanitize` first (length, control characters).
"""
from __future__ import annotations

import re
import string
from typing import TYPE_CHECKING

from verifiers.extract import MAX_BARE_CHARS, last_boxed
from verifiers.sanitize import InputRejected, check_answer_length, clean_text
from verifiers.verdict import Verdict

if TYPE_CHECKING:
    from verifiers.formats import Format

_PHRASE = re.compile(r"(?i)\banswer\b[*_\s]*(?:is\b[*_\s]*:?|:|=)[*_\s]*")
_WRAPPING = " \t\r\n*_`\"'$"  # markdown emphasis, code, quotes and math dollars around an answer
_TEXT_COMMANDS = ("\\text{", "\\textbf{", "\\mathrm{")
_OPTION_LINE = re.compile(r"(?m)^[ \t]*(?:\(([A-Z])\)|([A-Z])[.):])[ \t]+(\S[^\n]*?)[ \t]*$")
_PAREN_LETTER = re.compile(r"\(([A-Z])\)")
_LEAD_LETTER = re.compile(r"^(?:(?:option|choice)\s+)?\(?([A-Z])(?:\)|(?![A-Za-z0-9]))", re.IGNORECASE)
_TWO_LETTERS = re.compile(r"^\(?[A-Z]\)?\s*(?:,|/|&|\bor\b|\band\b)\s*\(?[A-Z]\)?(?![A-Za-z0-9])", re.IGNORECASE)
_JOINED = re.compile(r"^[\s,;/&]*(?:\b(?:or|and|nor)\b)")
_NEGATION = re.compile(r"(?i)(?:\bnot|n't|\bno)\W*$")
_TAIL_CHARS = 400


def _committed(text: str) -> str | None:
    """The committed answer of a response: the last box, else the rest of the line after the last answer phrase."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed[1]
    last = None
    for last in _PHRASE.finditer(text):
        pass
    if last is None:
        return None
    return text[last.end():].split("\n", 1)[0]


def is_response(text: str) -> bool:
    """A whole response rather than a bare answer: several lines, a committed answer, or long. (Unlike math
    answers, a bare word list or label is prose, so prose alone does not make a response.)"""
    text = text.strip()
    return "\n" in text or len(text) > MAX_BARE_CHARS or _PHRASE.search(text) is not None or "\\boxed" in text \
        or "\\fbox" in text


def _last_line(text: str) -> str | None:
    lines = [line for line in text.strip().split("\n") if line.strip()]
    return lines[-1] if lines else None


def _unwrap(span: str) -> str:
    """``span`` without the emphasis, quotes, dollars and ``\\text{...}`` wrapped around it (linear time)."""
    span = span.strip(_WRAPPING)
    opened = 0
    while span.startswith(_TEXT_COMMANDS):
        span = span[span.index("{") + 1:].strip(_WRAPPING)
        opened += 1
    for _ in range(opened):
        span = span.rstrip(_WRAPPING).removesuffix("}")
    return span.strip(_WRAPPING)


# --- choice ------------------------------------------------------------------------------------------------

def options(question: str | None) -> dict[str, str]:
    """Option letter -> text, from the lines of ``question`` that list options ("(A) blue", "B. red")."""
    if not question:
        return {}
    found: dict[str, str] = {}
    for m in _OPTION_LINE.finditer(question[-20_000:]):
        found.setdefault(m[1] or m[2], m[3].strip())
    return found


def letter(span: str, listed: dict[str, str] | None = None) -> str | None:
    """The one option ``span`` names: a leading letter ("(B)", "B", "B) blue", "option B") or, when the question
    lists options, an option's text; None for no option or two."""
    span = _unwrap(span).rstrip(".")
    listed = listed or {}
    if _TWO_LETTERS.match(span) or len(set(_PAREN_LETTER.findall(span))) > 1:
        return None
    m = _LEAD_LETTER.match(span)
    if m and (m[1].isupper() or span.startswith(("(", "option", "choice", "Option", "Choice"))):
        found = m[1].upper()
        rest = _unwrap(span[m.end():]).rstrip(".").lower()
        if rest and listed.get(found, "").lower() not in ("", rest) and \
                any(rest == text.lower() for k, text in listed.items() if k != found):
            return None  # "(A) red" where red is option B
        return found if not listed or found in listed else None
    named = {k for k, text in listed.items() if span.lower() == text.lower().rstrip(".")}
    return named.pop() if len(named) == 1 else None


def _choice(response: str, mode: str, question: str | None) -> str | None:
    listed = options(question)
    span = _committed(response)
    if span is not None or mode == "strict":
        return None if span is None else letter(span, listed)
    last = _last_line(response)
    found = letter(last, listed) if last else None
    if found:
        return found
    mentions = [x for x in _PAREN_LETTER.findall(response[-_TAIL_CHARS:]) if not listed or x in listed]
    return mentions[-1] if mentions else None


# --- label -------------------------------------------------------------------------------------------------

def _label_at_start(span: str, labels: tuple[str, ...]) -> str | None:
    """The label ``span`` starts with (longest first), unless another label is joined to it ("yes and no")."""
    text = _unwrap(span).lower()
    for label in sorted(labels, key=len, reverse=True):
        low = label.lower()
        if text.startswith(low) and not text[len(low):len(low) + 1].isalnum():
            rest = text[len(low):]
            joined = _JOINED.match(rest)
            if joined and _label_at_start(rest[joined.end():], labels):
                return None
            return label
    return None


def _label(response: str, fmt: "Format", mode: str) -> str | None:
    span = _committed(response)
    if span is not None or mode == "strict":
        return None if span is None else _label_at_start(span, fmt.labels)
    last = _last_line(response)
    found = _label_at_start(last, fmt.labels) if last else None
    if found:
        return found
    tail = response[-_TAIL_CHARS:]
    pattern = re.compile(r"(?i)(?<![A-Za-z0-9])(" + "|".join(re.escape(x) for x in
                         sorted(fmt.labels, key=len, reverse=True)) + r")(?![A-Za-z0-9])")
    kept = [m for m in pattern.finditer(tail) if not _NEGATION.search(tail[max(0, m.start() - 8):m.start()])]
    if not kept:
        return None
    return next(x for x in fmt.labels if x.lower() == kept[-1][1].lower())


# --- exact -------------------------------------------------------------------------------------------------

def normalize_exact(text: str, fmt: "Format") -> str:
    """``text`` under the exact format's options (whitespace runs always collapse)."""
    for pattern in fmt.regexes_to_ignore:
        text = re.sub(pattern, "", text)
    if fmt.ignore_case:
        text = text.lower()
    if fmt.ignore_punctuation:
        text = text.translate(str.maketrans("", "", string.punctuation))
    return re.sub(r"\s+", "" if fmt.ignore_whitespace else " ", text).strip()


def _exact(response: str, mode: str) -> str | None:
    span = _committed(response)
    if span is None and mode == "flexible":
        span = _last_line(response)
    span = _unwrap(span) if span is not None else None
    return span or None


# --- the format interface ----------------------------------------------------------------------------------

def extract(response: str, fmt: "Format", mode: str, question: str | None = None) -> str | None:
    """The answer a whole response commits to under ``fmt`` (a choice as its letter, a label as declared)."""
    try:
        text = clean_text(response)
    except InputRejected:
        return None
    if fmt.name == "choice":
        return _choice(text, mode, question)
    if fmt.name == "label":
        return _label(text, fmt, mode)
    return _exact(text, mode)


def parse_gold(gold: str, fmt: "Format", question: str | None = None) -> str | None:
    """A gold answer (bare, or a whole worked solution) as this format reads it, or None."""
    try:
        text = check_answer_length(clean_text(gold)) if not is_response(gold) else clean_text(gold)
    except InputRejected:
        return None
    if is_response(text):
        return extract(text, fmt, "strict", question)
    if fmt.name == "choice":
        return letter(text, options(question))
    if fmt.name == "label":
        found = _label_at_start(text, fmt.labels)
        return found if found and _unwrap(text).rstrip(".").lower() == found.lower() else None
    return _unwrap(text) or None


def _bare(pred: str, fmt: "Format", question: str | None) -> str | None:
    if fmt.name == "exact":
        return _unwrap(pred) or None
    return parse_gold(pred, fmt, question)


def verify(gold: str, pred: str, fmt: "Format", mode: str, question: str | None = None) -> Verdict:
    if not isinstance(gold, str) or not isinstance(pred, str):
        raise TypeError("gold and pred must be strings")
    try:
        pred_text = clean_text(pred)
        gold_text = clean_text(gold)
    except InputRejected as exc:
        return Verdict(False, "rejected", None, str(exc))
    response = is_response(pred_text)
    extracted = extract(pred_text, fmt, mode, question) if response else _bare(pred_text, fmt, question)
    how = "bare" if not response else "committed" if _committed(pred_text) is not None else "flexible"
    if extracted is None and not response and mode == "flexible":  # one line of prose: read it like a response
        extracted, how = extract(pred_text, fmt, mode, question), "flexible"
    if extracted is None:
        return Verdict(False, "no_answer", None, "no_final_answer")
    try:
        check_answer_length(extracted)
    except InputRejected as exc:
        return Verdict(False, "rejected", None, str(exc), how)
    gold_answer = parse_gold(gold_text, fmt, question)
    if gold_answer is None:
        return Verdict(False, "rejected", extracted, "unparsed_gold", how)
    if fmt.name == "exact":
        g, p = normalize_exact(gold_answer, fmt), normalize_exact(extracted, fmt)
        if not g:
            return Verdict(False, "rejected", extracted, "empty_gold", how)
        if not g.endswith("."):
            p = p.rstrip(".").rstrip()
        return Verdict(g == p, "exact", extracted, extraction=how)
    same = gold_answer == extracted if fmt.name == "choice" else gold_answer.lower() == extracted.lower()
    return Verdict(same, fmt.name, extracted, extraction=how)
