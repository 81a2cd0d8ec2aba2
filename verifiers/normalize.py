"""Canonical LaTeX for an answer string: formatting removed, meaning kept.

The canonical form is what exact matching compares and what :mod:`verifiers.structure` splits.
Only presentation is dropped here (math delimiters, ``\\boxed``, spacing commands, ``\\left``/
``\\right``, ``\\dfrac``, units and words after a value, degrees, currency, thousands separators
including LaTeX's ``1{,}250``, ``1,\\!250`` and ``1,\\! 250``, trailing punctuation); percent signs become ``\\%`` and are dropped per value later.
"""
from __future__ import annotations

import re

from verifiers.extract import last_boxed

_WRAPPERS = (("$$", "$$"), ("$", "$"), (r"\(", r"\)"), (r"\[", r"\]"))
_LATEX_THOUSANDS = re.compile(r"(?<=[0-9]),\\!\s?(?=[0-9]{3}(?![0-9]))")
_SPACING = re.compile(r"(\\\\)|\\[!,;:> ]|\\q?quad\b|\\(?:en|thin|med|thick)space\b|~")
_SIZING = re.compile(r"\\(?:left|right|[bB]igg?[lr]?|middle)(?![A-Za-z])\.?")
_DROP = re.compile(r"\\(?:displaystyle|textstyle|scriptstyle|limits|nolimits|mathstrut)(?![A-Za-z])")
_FRAC_VARIANT = re.compile(r"\\[dtc]frac(?![A-Za-z])")
_FRAC_SHORT = re.compile(r"\\frac\s*([0-9A-Za-z])\s*([0-9A-Za-z])")
_FRAC_SHORT_NUM = re.compile(r"\\frac\s*([0-9A-Za-z])\s*\{")
_FRAC_SHORT_DEN = re.compile(r"\\frac(\{[^{}]*\})\s*([0-9A-Za-z])")
_SQRT_SHORT = re.compile(r"\\sqrt\s*([0-9A-Za-z])")
_TEXT_CMD = re.compile(r"\\(?:textnormal|textbf|textit|textrm|textsf|texttt|mbox|mathrm|mathbf|mathit|mathsf|emph|hbox)\s*\{")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree(?![A-Za-z])|\\text\{\s*degrees?\s*\}|(?<=[0-9}\s])degrees?\b")
_PERCENT = re.compile(r"\\?%|\\text\{\s*percent\s*\}|(?<=[0-9}\s])percent\b")
_CONNECTIVE = re.compile(r"\s*(?:\\text\{\s*(?:and|or)\s*\}|(?<=\S)\s+(?:and|or)\s+(?=\S))\s*")
_TRAILING_TEXT = re.compile(r"(?<=\S)\s*(?:\\text\{[A-Za-z\s.'/-]*\}(?:\^\{?[0-9]\}?)?\s*)+$")
_TRAILING_WORDS = re.compile(r"(?<=[0-9}])\s+(?:[A-Za-z]{2,}\.?(?:\^\{?[0-9]\}?)?(?:\s+|$))+$")
_RELATIONS = (
    (re.compile(r"\\leq?slant(?![A-Za-z])|\\leq?(?![A-Za-z])|<=|=<"), r"\le "),
    (re.compile(r"\\geq?slant(?![A-Za-z])|\\geq?(?![A-Za-z])|>="), r"\ge "),
    (re.compile(r"\\neq?(?![A-Za-z])|!="), r"\ne "),
    (re.compile(r"\\lt(?![A-Za-z])"), "<"),
    (re.compile(r"\\gt(?![A-Za-z])"), ">"),
    (re.compile(r"\\infin(?![A-Za-z])|\\infty(?![A-Za-z])"), r"\infty "),
    (re.compile(r"\\mathbb\s*\{?R\}?"), r"(-\infty,\infty)"),
    (re.compile(r"\\varnothing(?![A-Za-z])|\\\{\s*\\\}"), r"\emptyset "),
    (re.compile(r"\\lbrace(?![A-Za-z])"), r"\{"),
    (re.compile(r"\\rbrace(?![A-Za-z])"), r"\}"),
    (re.compile(r"\\langle(?![A-Za-z])"), "("),
    (re.compile(r"\\rangle(?![A-Za-z])"), ")"),
)
_THOUSANDS_COMMA = re.compile(r"[+-]?[0-9]{1,3}(?:(?:,|\{,\})[0-9]{3})+(?:\.[0-9]+)?")
_THOUSANDS_SPACE = re.compile(r"[+-]?[0-9]{1,3}(?: [0-9]{3})+(?:\.[0-9]+)?")
_MIXED_SLASH = re.compile(r"([+-]?[0-9]+)\s+([0-9]+)\s*/\s*([0-9]+)")
_SPACES = re.compile(r"(?<![A-Za-z])\s+|\s+(?![A-Za-z])")


def strip_wrappers(text: str) -> str:
    """Remove math delimiters, currency signs and (nested) box commands around an answer."""
    text = text.strip()
    for _ in range(20):
        text = re.sub(r"^\*\*(.*)\*\*$", r"\1", text, flags=re.S).strip()
        before = text
        boxed = last_boxed(text)
        if boxed is not None and boxed[1] is not None and not text[:boxed[0]].strip(" $([\\"):
            text = boxed[1].strip()
        for opener, closer in _WRAPPERS:
            if len(text) >= len(opener) + len(closer) and text.startswith(opener) and text.endswith(closer):
                text = text[len(opener):len(text) - len(closer)].strip()
        if text == before:
            break
    return text.replace("\\$", "").replace("$", "").strip()


def _unwrap_text_commands(text: str) -> str:
    """``\\textbf{x}``, ``\\mbox{x}``, ``\\mathrm{x}`` all become ``\\text{x}``."""
    return _TEXT_CMD.sub(r"\\text{", text)


def _strip_whole_text(text: str) -> str:
    if text.startswith(r"\text{") and text.endswith("}") and text.count("{") == 1:
        return text[len(r"\text{"):-1].strip()
    return text


def _strip_trailing_punctuation(text: str) -> str:
    for _ in range(5):
        new = text.rstrip(" .;:,").strip()
        new = re.sub(r"\\text\{\s*[.,;]?\s*\}$", "", new).strip()
        if new == text:
            break
        text = new
    return text


def _fix_shorthand(text: str) -> str:
    text = _FRAC_VARIANT.sub(r"\\frac", text)
    text = _FRAC_SHORT.sub(r"\\frac{\1}{\2}", text)
    text = _FRAC_SHORT_NUM.sub(r"\\frac{\1}{", text)
    text = _FRAC_SHORT_DEN.sub(r"\\frac\1{\2}", text)
    return _SQRT_SHORT.sub(r"\\sqrt{\1}", text)


def _strip_units(text: str) -> str:
    for pattern in (_TRAILING_TEXT, _TRAILING_WORDS):
        stripped = pattern.sub("", text).strip()
        if stripped and stripped != text:
            text = stripped
    return text


def _numbers(text: str, task: str) -> str:
    if task == "number":
        text = re.sub(r"(?<=[0-9])(?:,|\{,\})(?=[0-9]{3})", "", text)
    if _THOUSANDS_COMMA.fullmatch(text) or _THOUSANDS_SPACE.fullmatch(text):
        return text.replace("{,}", "").replace(",", "").replace(" ", "")
    m = _MIXED_SLASH.fullmatch(text)
    if m:
        return rf"{m[1]}\frac{{{m[2]}}}{{{m[3]}}}"
    return text


def normalize(answer: str, task: str = "math") -> str:
    """Canonical form of one answer (gold or prediction)."""
    text = strip_wrappers(answer)
    text = _LATEX_THOUSANDS.sub("{,}", text)
    text = _DROP.sub("", _SIZING.sub("", text))
    text = _SPACING.sub(lambda m: m[1] or " ", text)
    text = _unwrap_text_commands(text)
    text = _fix_shorthand(text)
    text = _DEGREES.sub("", text)
    text = _PERCENT.sub(r"\\%", text)
    text = _strip_trailing_punctuation(text)
    text = _strip_whole_text(text)
    text = _strip_units(text)
    text = _CONNECTIVE.sub(",", text)
    for pattern, replacement in _RELATIONS:
        text = pattern.sub(lambda _m, r=replacement: r, text)
    text = re.sub(r"\s+", " ", text).strip()
    text = _strip_trailing_punctuation(text)
    text = _numbers(text, task)
    text = _SPACES.sub("", text)
    if text.startswith("+") and not text.startswith("+-"):
        text = text[1:]
    return text
