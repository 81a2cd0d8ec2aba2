"""Exact equality of rational functions with rational coefficients, without sympy.

A small recursive-descent reader accepts only a strict subset of canonical LaTeX: decimal
numbers; single-letter variables (not ``e``/``E``/``i``/``I``, which may be constants);
``\\pi`` (transcendental, so treating it as one more indeterminate changes no answer);
``+ -``, ``\\cdot``, ``\\times``; implicit products whose right factor starts with a letter or
with ``(`` not right after a letter (``f(x)`` may be a function); parentheses; ``\\frac{..}{..}``;
and ``^`` with a small non-negative integer exponent. Anything else is refused with ``None`` and
left to the symbolic worker: other commands, relations, commas, ``*`` and bare ``{..}`` groups
(as in templates), ``\\frac{d..}{..}`` (a derivative), a number right before ``\\frac`` (the
mixed number ``3\\frac{1}{2}``), ``x2``, chained powers.

In-process values are polynomials as ``{monomial: Fraction}``; a rational function is a
(numerator, denominator) pair, and two are equal when ``n1 * d2 == n2 * d1`` exactly. Sizes are
bounded (characters, monomials, degree, coefficient bits), so every accepted input is cheap.
The same reader builds sympy values in the worker (``verifiers.symbolic``), where ``\\sqrt{..}``
and ``\\sqrt[n]{..}`` are accepted too, so common answers skip the much slower ANTLR parser.
"""
from __future__ import annotations

import re
from fractions import Fraction

MAX_CHARS = 200
MAX_EXPONENT = 24
MAX_DEGREE = 48
MAX_TERMS = 256
MAX_COEFFICIENT_BITS = 2_048

_TOKEN = re.compile(r"\s*(?:(?P<num>[0-9]+(?:\.[0-9]+)?)|(?P<var>[A-Za-z]|\\pi(?![A-Za-z]))"
                    r"|(?P<cmd>\\cdot|\\times|\\frac|\\sqrt)(?![A-Za-z])|(?P<op>[-+^(){}\[\]]))")
_CONSTANT_LETTERS = frozenset("eEiI")
_DERIVATIVE = re.compile(r"\\frac\s*\{\s*d")

Poly = dict  # {tuple of (variable, power) sorted by variable: Fraction}


class Refused(Exception):
    """The text is outside the accepted subset, too large, or uses an operation the algebra
    does not support; the reader then answers None."""


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise Refused
        kind = m.lastgroup
        value = m[kind]
        if kind == "var" and value in _CONSTANT_LETTERS:
            raise Refused
        if kind == "num" and tokens and tokens[-1] == ("op", "^") and len(value) > 1:
            tokens.append((kind, value[0]))  # x^23 is x^{2} 3 in LaTeX
            tokens.append((kind, value[1:]))
        else:
            tokens.append((kind, value))
        pos = m.end()
    return tokens


def _check(p: Poly) -> Poly:
    if len(p) > MAX_TERMS:
        raise Refused
    for monomial, c in p.items():
        if sum(e for _, e in monomial) > MAX_DEGREE:
            raise Refused
        if c.numerator.bit_length() > MAX_COEFFICIENT_BITS or c.denominator.bit_length() > MAX_COEFFICIENT_BITS:
            raise Refused
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
        raise Refused
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


class Exact:
    """The in-process algebra: (numerator, denominator) polynomials with Fraction coefficients."""

    def number(self, text: str):
        return _const(Fraction(text)), _ONE

    def symbol(self, name: str):
        return {((name, 1),): Fraction(1)}, _ONE

    def add(self, a, b, sign: int = 1):
        return _add(_mul(a[0], b[1]), _mul(b[0], a[1]), sign), _mul(a[1], b[1])

    def mul(self, a, b):
        return _mul(a[0], b[0]), _mul(a[1], b[1])

    def div(self, a, b):
        if not b[0]:
            raise Refused
        return _mul(a[0], b[1]), _mul(a[1], b[0])

    def power(self, a, k: int):
        out = self.number("1")
        for _ in range(k):
            out = self.mul(out, a)
        return out

    def root(self, a, k: int):
        raise Refused


EXACT = Exact()
_IMPLICIT_RIGHT = (("op", "("), ("cmd", r"\sqrt"))


class _Reader:
    """Recursive descent over the tokens, building values with ``algebra``."""

    def __init__(self, tokens: list[tuple[str, str]], algebra) -> None:
        self.tokens, self.i, self.alg = tokens, 0, algebra

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: tuple[str, str] | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise Refused
        self.i += 1
        return token

    def expr(self):
        negative = False
        if self.peek() in (("op", "+"), ("op", "-")):
            negative = self.take()[1] == "-"
        value = self.term()
        if negative:
            value = self.alg.mul(self.alg.number("-1"), value)
        while self.peek() in (("op", "+"), ("op", "-")):
            sign = 1 if self.take()[1] == "+" else -1
            value = self.alg.add(value, self.term(), sign)
        return value

    def term(self):
        value = self.factor()
        while True:
            token = self.peek()
            if token in (("cmd", r"\cdot"), ("cmd", r"\times")):
                self.take()
            elif token is None or not (token[0] == "var" or token in _IMPLICIT_RIGHT):
                return value
            elif token == ("op", "(") and self._after_letter():
                raise Refused  # f(x) may be a function application; \pi(x+1) is a product
            value = self.alg.mul(value, self.factor())

    def _after_letter(self) -> bool:
        kind, value = self.tokens[self.i - 1]
        return kind == "var" and value != r"\pi"

    def factor(self):
        value = self.base()
        if self.peek() == ("op", "^"):
            self.take()
            value = self.alg.power(value, self.exponent())
            if self.peek() == ("op", "^"):
                raise Refused
        return value

    def exponent(self) -> int:
        braced = self.peek() == ("op", "{")
        if braced:
            self.take()
        kind, value = self.take()
        if kind != "num" or not value.isdigit() or int(value) > MAX_EXPONENT:
            raise Refused
        if braced:
            self.take(("op", "}"))
        return int(value)

    def base(self):
        kind, value = self.take()
        if kind == "num":
            if self.peek() == ("cmd", r"\frac"):
                raise Refused  # 3\frac{1}{2}: a mixed number, not a product
            return self.alg.number(value)
        if kind == "var":
            return self.alg.symbol(value)
        if (kind, value) == ("op", "("):
            inner = self.expr()
            self.take(("op", ")"))
            return inner
        if (kind, value) == ("cmd", r"\frac"):
            numerator = self.group()
            return self.alg.div(numerator, self.group())
        if (kind, value) == ("cmd", r"\sqrt"):
            index = 2
            if self.peek() == ("op", "["):
                self.take()
                kind, digits = self.take()
                if kind != "num" or digits not in "23456789" or len(digits) != 1:
                    raise Refused
                index = int(digits)
                self.take(("op", "]"))
            return self.alg.root(self.group(), index)
        raise Refused

    def group(self):
        self.take(("op", "{"))
        inner = self.expr()
        self.take(("op", "}"))
        return inner


def read(text: str, algebra=EXACT):
    """``text`` as a value of ``algebra`` if it lies in the accepted subset, else None."""
    if len(text) > MAX_CHARS or _DERIVATIVE.search(text):
        return None  # \frac{d}{dx} is a derivative, not d / (d x)
    try:
        reader = _Reader(_tokens(text), algebra)
        value = reader.expr()
    except Refused:
        return None
    return None if reader.peek() is not None else value


def rational_function(text: str) -> tuple[Poly, Poly] | None:
    """``text`` as (numerator, denominator) polynomials, or None outside the subset."""
    return read(text, EXACT)


def polynomial_equal(a: str, b: str) -> bool | None:
    """Whether two leaves are the same rational function; None when either is refused."""
    x, y = rational_function(a), rational_function(b)
    if x is None or y is None:
        return None
    try:
        return _mul(x[0], y[1]) == _mul(y[0], x[1])
    except Refused:
        return None
