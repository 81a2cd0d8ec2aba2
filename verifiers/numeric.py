"""Exact numbers from strictly validated strings: integers, decimals, fractions, mixed numbers,
scientific notation and repeating decimals, all as :class:`fractions.Fraction`.

Only whole-string regular-expression matches are accepted, so nothing here can evaluate an
arbitrary expression; anything else returns ``None`` and is left to the symbolic checker.
Terminating decimals are exact (``0.5 == 1/2``) and rounded ones are not (``0.33 != 1/3``).
"""
from __future__ import annotations

import re
from fractions import Fraction

MAX_DIGITS = 1_000
MAX_EXPONENT = 400

_NUM = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_SIGNED = rf"[+-]?{_NUM}"
_EXP = r"(?:\{(?P<e1>[+-]?[0-9]{1,4})\}|(?P<e2>[+-]?[0-9]))"

_PLAIN = re.compile(rf"(?P<s>[+-]?)(?P<n>{_NUM})")
_SCI = re.compile(
    rf"(?P<s>[+-]?)(?P<n>{_NUM})(?:[eE](?P<e0>[+-]?[0-9]{{1,4}})|(?:\\times|\\cdot|\*)10\^{_EXP})"
)
_FRAC = re.compile(rf"(?P<s>[+-]?)\\frac\{{(?P<a>{_SIGNED})\}}\{{(?P<b>{_SIGNED})\}}")
_SLASH = re.compile(rf"(?P<s>[+-]?)(?P<a>{_NUM})/(?P<b>{_NUM})")
_MIXED = re.compile(r"(?P<s>[+-]?)(?P<w>[0-9]+)\\frac\{(?P<a>[0-9]+)\}\{(?P<b>[0-9]+)\}")
_REPEAT = re.compile(
    r"(?P<s>[+-]?)(?P<i>[0-9]*)\.(?P<f>[0-9]*)\\overline\{?(?P<r>[0-9]+)\}?"
)


class Undefined(ValueError):
    """A number that has no value, such as a division by zero."""


def _decimal(text: str) -> Fraction:
    if len(text) > MAX_DIGITS:
        raise Undefined(f"number_too_long: {len(text)} digits")
    return Fraction(text)


def _signed(sign: str, value: Fraction) -> Fraction:
    return -value if sign == "-" else value


def _divide(a: Fraction, b: Fraction) -> Fraction:
    if b == 0:
        raise Undefined("division_by_zero")
    return a / b


def parse_number(text: str) -> Fraction | None:
    """The exact value of ``text`` if it is one of the accepted numeric forms, else ``None``.

    Raises :class:`Undefined` for a numeric form without a value (``1/0``) or an oversized one.
    """
    if len(text) > 3 * MAX_DIGITS:
        raise Undefined(f"number_too_long: {len(text)} characters")
    m = _PLAIN.fullmatch(text)
    if m:
        return _signed(m["s"], _decimal(m["n"]))
    m = _SCI.fullmatch(text)
    if m:
        exponent = int(m["e0"] or m["e1"] or m["e2"])
        if abs(exponent) > MAX_EXPONENT:
            raise Undefined(f"exponent_too_large: {exponent}")
        return _signed(m["s"], _decimal(m["n"]) * Fraction(10) ** exponent)
    m = _FRAC.fullmatch(text) or _SLASH.fullmatch(text)
    if m:
        return _signed(m["s"], _divide(_decimal(m["a"]), _decimal(m["b"])))
    m = _MIXED.fullmatch(text)
    if m:
        whole = _decimal(m["w"])
        return _signed(m["s"], whole + _divide(_decimal(m["a"]), _decimal(m["b"])))
    m = _REPEAT.fullmatch(text)
    if m:
        return _signed(m["s"], _repeating(m["i"], m["f"], m["r"]))
    return None


def _repeating(integer: str, fixed: str, period: str) -> Fraction:
    if len(integer) + len(fixed) + len(period) > MAX_DIGITS:
        raise Undefined("number_too_long")
    value = Fraction(int(integer or "0"))
    scale = 10 ** len(fixed)
    value += Fraction(int(fixed or "0"), scale)
    value += Fraction(int(period), (10 ** len(period) - 1) * scale)
    return value


def parse_digits(text: str) -> str | None:
    """``text`` as a string of ASCII digits without leading zeros, or ``None``."""
    if text.isascii() and text.isdigit():
        return text.lstrip("0") or "0"
    return None
