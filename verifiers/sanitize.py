"""Input hygiene applied before anything else looks at a string.

Decisions (documented in the package docstring too):

* Length is bounded: a whole response may have at most ``MAX_INPUT_CHARS`` characters, an
  answer (gold, bare prediction or extracted answer) at most ``MAX_ANSWER_CHARS``.
* LaTeX commands damaged by Python string escapes (``"\\frac"`` written without ``r`` turns
  into form feed + ``rac``) are repaired for a few unambiguous commands (``\\frac``,
  ``\\boxed``, ``\\times``, ``\\text``, ``\\right``, ...).
* NUL and other control characters (anything in Unicode category Cc except tab, newline and
  carriage return) reject the input.
* Text is normalised with NFKC, so compatibility forms such as fullwidth digits ``１２`` become
  ``12``. Superscript digits are turned into ``^{n}`` first (NFKC would flatten ``x²`` to ``x2``),
  and vulgar fractions into ``\\frac{a}{b}`` (NFKC would turn ``3½`` into ``31⁄2``, 31/2).
* Decimal digits that are still not ASCII after NFKC (Arabic-Indic, Devanagari, ...) reject the
  input: they are never read as numbers, so a look-alike can never be accepted.
* A few Unicode math symbols are mapped to their LaTeX commands (``π`` to ``\\pi``, ``−`` to ``-``).
"""
from __future__ import annotations

import re
import unicodedata

MAX_INPUT_CHARS = 400_000
MAX_ANSWER_CHARS = 2_000


class InputRejected(ValueError):
    """The input is refused before parsing; ``str(exc)`` is the reason recorded in the Verdict."""


_SUPERSCRIPTS = str.maketrans({
    "⁰": "^{0}", "¹": "^{1}", "²": "^{2}", "³": "^{3}", "⁴": "^{4}",
    "⁵": "^{5}", "⁶": "^{6}", "⁷": "^{7}", "⁸": "^{8}", "⁹": "^{9}", "⁻": "^{-}",
})

_MATH_SYMBOLS = str.maketrans({
    "−": "-", "–": "-", "‐": "-", "‑": "-", "⁄": "/", "∕": "/",
    "×": r"\times ", "·": r"\cdot ", "⋅": r"\cdot ", "÷": r"\div ",
    "π": r"\pi ", "√": r"\sqrt", "∞": r"\infty ", "±": r"\pm ", "∓": r"\mp ",
    "≤": r"\le ", "≥": r"\ge ", "≠": r"\ne ", "°": r"^\circ ",
    "∪": r"\cup ", "∩": r"\cap ", "…": r"\ldots ", "θ": r"\theta ",
    "α": r"\alpha ", "β": r"\beta ", "λ": r"\lambda ",
})

_VULGAR_FRACTION = re.compile("[\u00bc-\u00be\u2150-\u215e]")
_ESCAPE_DAMAGE = re.compile(
    r"\x07(?=lpha|pprox)|\x08(?=oxed|eta|inom|egin|ar\{|ig)|\x0c(?=rac)|\r(?=ight|ho)"
    r"|\t(?=ext|imes|heta|frac|au\b)|\x0b(?=ec|arepsilon|arphi)"
)
_ESCAPE_LETTER = {"\x07": "a", "\x08": "b", "\x0c": "f", "\r": "r", "\t": "t", "\x0b": "v"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_NON_ASCII_DIGIT = re.compile(r"(?![0-9])\d")


def _vulgar_fraction(m: re.Match) -> str:
    numerator, denominator = unicodedata.normalize("NFKC", m.group()).split("\u2044")
    return rf"\frac{{{numerator}}}{{{denominator}}}"


def clean_text(text: str, limit: int = MAX_INPUT_CHARS) -> str:
    """Return ``text`` checked and normalised, or raise :class:`InputRejected`."""
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    if len(text) > limit:
        raise InputRejected(f"input_too_long: {len(text)} > {limit} characters")
    text = _ESCAPE_DAMAGE.sub(lambda m: "\\" + _ESCAPE_LETTER[m.group()], text)
    bad = _CONTROL.search(text)
    if bad:
        raise InputRejected(f"control_character: U+{ord(bad.group()):04X}")
    if text.isascii():
        return text
    text = _VULGAR_FRACTION.sub(_vulgar_fraction, text.translate(_SUPERSCRIPTS))
    text = unicodedata.normalize("NFKC", text).translate(_MATH_SYMBOLS)
    bad = _NON_ASCII_DIGIT.search(text)
    if bad:
        raise InputRejected(f"non_ascii_digit: U+{ord(bad.group()):04X}")
    if len(text) > limit:
        raise InputRejected(f"input_too_long: {len(text)} > {limit} characters")
    return text


def check_answer_length(answer: str) -> str:
    """Bound an answer before any parsing."""
    if len(answer) > MAX_ANSWER_CHARS:
        raise InputRejected(f"answer_too_long: {len(answer)} > {MAX_ANSWER_CHARS} characters")
    return answer
