"""Exact equality of rational functions with rational coefficients, without sympy.

A small recursive-descent reader accepts only a strict subset of canonical LaTeX: decimal
numbers, single-letter variables (not ``e``/``E``/``i``/``I``, which may be constants), ``\\pi``
(transcendental, so it may be treated as one more indeterminate without changing any answer), ``+ -``,
``\\cdot``, ``\\times``, implicit products whose right factor starts with a letter or
with ``(`` not right after a letter (``f(x)`` may be a function), parentheses, ``\\frac{..}{..}``
and ``^`` with a small non-negative integer exponent. Anything else (commands, relations, commas,
``*`` and bare ``{..}`` groups as in templates, a number right before ``\\frac`` as in the
mixed number ``3\\frac{1}{2}``, ``x2``, chained powers) is refused with ``None`` and left to the
symbolic worker. Values are polynomials as ``{monomial: Fraction}``, a rational function is a
(numerator, denominator) pair, and two are equal when ``n1 * d2 == n2 * d1`` exactly. Sizes are
bounded (characters, monomials, degree, coefficient bits), so every accepted input is cheap.
"""
from __future__ import annotations

import re
from fractions import Fraction

MAX_CHARS = 200
MAX_EXPONENT = 24
MAX_DEGREE = 48
MAX_TERMS = 256
MAX_COEFFICIENT_BITS = 2_048

_TOKEN = re.compile(r"\s*(?:(?P<num>[0-9]+(?:\.[0-9]+)?)|(?P<var>[A-Za-z]|\\pi(?![A-Za-z]))|(?P<cmd>\\cdot|\\times|\\frac)"
                    r"(?![A-Za-z])|(?P<op>[-+^(){}]))")
_CONSTANT_LETTERS = frozenset("eEiI")

Poly = dict  # {tuple of (variable, power) sorted by variable: Fraction}


class _Refused(Exception):
    """The text is outside the accepted subset, or too large."""


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _Refused
        kind = m.lastgroup
        value = m[kind]
        if kind == "var" and value in _CONSTANT_LETTERS:
            raise _Refused
        if kind == "num" and tokens and tokens[-1] == ("op", "^") and len(value) > 1:
            tokens.append((kind, value[0]))  # x^23 is x^{2} 3 in LaTeX
            tokens.append((kind, value[1:]))
        else:
            tokens.append((kind, value))
        pos = m.end()
    return tokens


def _check(p: Poly) -> Poly:
    if len(p) > MAX_TERMS:
        raise _Refused
    for monomial, c in p.items():
        if sum(e for _, e in monomial) > MAX_DEGREE:
            raise _Refused
        if c.numerator.bit_length() > MAX_COEFFICIENT_BITS or c.denominator.bit_length() > MAX_COEFFICIENT_BITS:
            raise _Refused
    return p


def _add(a: Poly, b: Poly, sign: int = 1) -> Poly:
    out = dict(a)
    for m, c in b.items():
        value = out.get(m, 0) + sign * c
        if value:
            out[m] = value
        else:
            out.pop(m, None)
    return _check(out)


def _mul(a: Poly, b: Poly) -> Poly:
    if len(a) * len(b) > MAX_TERMS * 4:
        raise _Refused
    out: Poly = {}
    for ma, ca in a.items():
        for mb, cb in b.items():
            powers = dict(ma)
            for v, e in mb:
                powers[v] = powers.get(v, 0) + e
            m = tuple(sorted(powers.items()))
            value = out.get(m, 0) + ca * cb
            if value:
                out[m] = value
            else:
                out.pop(m, None)
    return _check(out)


def _const(c: Fraction) -> Poly:
    return {(): c} if c else {}


_ONE = {(): Fraction(1)}


class _Reader:
    """Rational functions as (numerator, denominator) polynomials."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens, self.i = tokens, 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: tuple[str, str] | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise _Refused
        self.i += 1
        return token

    def expr(self) -> tuple[Poly, Poly]:
        sign = 1
        if self.peek() in (("op", "+"), ("op", "-")):
            sign = -1 if self.take()[1] == "-" else 1
        num, den = self.term()
        num = _mul(_const(Fraction(sign)), num)
        while self.peek() in (("op", "+"), ("op", "-")):
            s = 1 if self.take()[1] == "+" else -1
            n2, d2 = self.term()
            num, den = _add(_mul(num, d2), _mul(n2, den), s), _mul(den, d2)
        return num, den

    def term(self) -> tuple[Poly, Poly]:
        num, den = self.factor()
        while True:
            token = self.peek()
            if token in (("cmd", r"\cdot"), ("cmd", r"\times")):
                self.take()
            elif token is None or not (token[0] == "var" or token == ("op", "(")):
                return num, den
            elif token == ("op", "(") and self.tokens[self.i - 1][0] == "var":
                raise _Refused  # f(x) may be a function application
            n2, d2 = self.factor()
            num, den = _mul(num, n2), _mul(den, d2)

    def factor(self) -> tuple[Poly, Poly]:
        num, den = self.base()
        if self.peek() == ("op", "^"):
            self.take()
            exponent = self.exponent()
            if self.peek() == ("op", "^"):
                raise _Refused
            pn, pd = _ONE, _ONE
            for _ in range(exponent):
                pn, pd = _mul(pn, num), _mul(pd, den)
            num, den = pn, pd
        return num, den

    def exponent(self) -> int:
        braced = self.peek() == ("op", "{")
        if braced:
            self.take()
        kind, value = self.take()
        if kind != "num" or not value.isdigit() or int(value) > MAX_EXPONENT:
            raise _Refused
        if braced:
            self.take(("op", "}"))
        return int(value)

    def base(self) -> tuple[Poly, Poly]:
        kind, value = self.take()
        if kind == "num":
            if self.peek() == ("cmd", r"\frac"):
                raise _Refused  # 3\frac{1}{2}: a mixed number, not a product
            return _const(Fraction(value)), _ONE
        if kind == "var":
            return {((value, 1),): Fraction(1)}, _ONE
        if (kind, value) == ("op", "("):
            inner = self.expr()
            self.take(("op", ")"))
            return inner
        if (kind, value) == ("cmd", r"\frac"):
            n1, d1 = self.group()
            n2, d2 = self.group()
            if not n2:
                raise _Refused
            return _mul(n1, d2), _mul(d1, n2)
        raise _Refused

    def group(self) -> tuple[Poly, Poly]:
        self.take(("op", "{"))
        inner = self.expr()
        self.take(("op", "}"))
        return inner


def rational_function(text: str) -> tuple[Poly, Poly] | None:
    """``text`` as (numerator, denominator) if it lies in the accepted subset, else None."""
    if len(text) > MAX_CHARS:
        return None
    try:
        reader = _Reader(_tokens(text))
        value = reader.expr()
        if reader.peek() is not None or not value[1]:
            return None
        return value
    except _Refused:
        return None


def polynomial_equal(a: str, b: str) -> bool | None:
    """Whether two leaves are the same rational function; None when either is refused."""
    x, y = rational_function(a), rational_function(b)
    if x is None or y is None:
        return None
    try:
        return _mul(x[0], y[1]) == _mul(y[0], x[1])
    except _Refused:
        return None
