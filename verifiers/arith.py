r"""Tokens and exact values of written arithmetic: the number-and-operator layer under ``verifiers.steps``.

:func:`tokenize` turns a rationale into :class:`Tok` records with character spans (numbers with
thousands separators, ``%``, currency signs, ``+ - * x × · / ÷ ^ **``, ``\times \cdot \div \frac``,
brackets, ``=``/``≈``, words and other LaTeX commands). :func:`evaluate` computes a token slice
exactly as a :class:`fractions.Fraction` with a small recursive-descent parser; nothing is ever
``eval``-ed. Anything it does not understand raises :class:`NotArithmetic`; values that would grow
too large (``2^2^2^2^2``) raise it too, so hostile text costs time linear in its length.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

MAX_NUMBER_DIGITS = 40
MAX_OPERAND_TOKENS = 64
MAX_DEPTH = 24
MAX_POWER_BITS = 20_000

NUM, OP, LP, RP, FRAC, EQ, WORD, CMD, CUR, PUNCT, BOUND, BOXED = (
    "num", "op", "lp", "rp", "frac", "eq", "word", "cmd", "cur", "punct", "bound", "boxed")

_TOKEN = re.compile(r"""
    (?P<nl>\n)
  | (?P<ws>[^\S\n]+|\\[,;:!\ ]|\\q?quad\b|\\displaystyle\b|\\left\.|\\right\.)
  | (?P<boxed>\\boxed\b)
  | (?P<num>(?:[0-9]{1,3}(?:(?:,|\{,\}|,\\!)[0-9]{3})+(?![0-9])|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+)
  | (?P<pct>\\?%)
  | (?P<eq>==?(?![=>])|≈|≃|~=|\\approx\b|\\simeq\b)
  | (?P<arrow>=>|->|→|⇒|\\Rightarrow\b|\\implies\b|\\\\|\\\[|\\\]|\\\(|\\\)|&)
  | (?P<op>\*\*|[-+*/^×·÷−–]|\\times\b|\\cdot\b|\\div\b|\\ast\b)
  | (?P<lp>\\left\s*[(\[]|[(\[{])
  | (?P<rp>\\right\s*[)\]]|[)\]}])
  | (?P<frac>\\[dt]?frac\b)
  | (?P<cur>\\?\$|[€£¢])
  | (?P<cmd>\\[A-Za-z]+)
  | (?P<word>[A-Za-z]+)
  | (?P<punct>.)
""", re.VERBOSE | re.DOTALL)

_OP_NAMES = {"**": "^", "×": "*", "·": "*", "÷": "/", "−": "-", "–": "-", r"\times": "*", r"\cdot": "*",
             r"\div": "/", r"\ast": "*", "x": "*", "X": "*", "times": "*", "of": "*", "plus": "+", "minus": "-"}


class NotArithmetic(ValueError):
    """A token slice that is not plain arithmetic (symbolic, ambiguous, malformed or too large)."""


@dataclass(slots=True)
class Tok:
    """One token: ``kind``, the text, its span, whether whitespace precedes it, and for numbers the
    digits written, the number of decimals and the percent mark (``value`` divides by 100 for it)."""

    kind: str
    text: str
    start: int
    end: int
    gap: bool
    digits: str = ""
    decimals: int = 0
    percent: bool = False
    _value: Fraction | None = None

    @property
    def op(self) -> str:
        return _OP_NAMES.get(self.text, self.text)

    @property
    def value(self) -> Fraction:
        """The exact value of a number token (computed on first use: most numbers are never evaluated)."""
        if self._value is None:
            self._value = Fraction(self.digits) / 100 if self.percent else Fraction(self.digits)
        return self._value


def _number(text: str) -> tuple[str, int]:
    digits = text.replace("{,}", "").replace("\\!", "").replace(",", "")
    if len(digits) > MAX_NUMBER_DIGITS:
        raise NotArithmetic(f"number with more than {MAX_NUMBER_DIGITS} digits")
    return digits, len(digits) - digits.index(".") - 1 if "." in digits else 0


def tokenize(text: str) -> list[Tok]:
    """The tokens of ``text`` (whitespace and spacing commands dropped, ``%`` merged into its number)."""
    out: list[Tok] = []
    gap = True
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "ws":
            gap = True
            continue
        tok = Tok(kind, m.group(), m.start(), m.end(), gap)
        gap = False
        if kind == "num":
            try:
                tok.digits, tok.decimals = _number(tok.text)
            except NotArithmetic:
                tok.kind = PUNCT  # an oversized number is never part of a checked claim
        elif kind == "pct":
            prev = out[-1] if out else None
            if prev is not None and prev.kind == NUM and not prev.percent:
                prev.percent, prev.end = True, tok.end
                prev.text = text[prev.start:tok.end]
                continue
            tok.kind = PUNCT
        elif kind in ("arrow", "nl"):
            tok.kind = BOUND
            gap = True
        out.append(tok)
    return out


def has_operator(tokens: list[Tok]) -> bool:
    """Whether a slice computes something (a binary operator, an implicit product such as ``5(10)``, or a
    fraction), not just states a number."""
    tokens = [t for t in tokens if t.kind != CUR]
    for i, t in enumerate(tokens):
        if t.kind == FRAC or (t.kind in (OP, LP) and i > 0 and tokens[i - 1].kind in (NUM, RP)):
            return True
    return False


def evaluate(tokens: list[Tok]) -> Fraction:
    """The exact value of a token slice of numbers, operators, brackets and ``\\frac`` groups."""
    items = [t for t in tokens if t.kind != CUR]
    if not items or len(items) > MAX_OPERAND_TOKENS:
        raise NotArithmetic("empty or overlong expression")
    parser = _Parser(items)
    value = parser.expr(0)
    if parser.i != len(items):
        raise NotArithmetic(f"unexpected {items[parser.i].text!r}")
    return value


class _Parser:
    def __init__(self, items: list[Tok]):
        self.items, self.i = items, 0

    def peek(self) -> Tok | None:
        return self.items[self.i] if self.i < len(self.items) else None

    def take(self) -> Tok:
        tok = self.peek()
        if tok is None:
            raise NotArithmetic("expression ends early")
        self.i += 1
        return tok

    def expr(self, depth: int) -> Fraction:
        if depth > MAX_DEPTH:
            raise NotArithmetic("nested too deeply")
        value = self.term(depth)
        while (tok := self.peek()) is not None and tok.kind == OP and tok.op in "+-":
            self.i += 1
            right = self.term(depth)
            value = value + right if tok.op == "+" else value - right
        return value

    def term(self, depth: int) -> Fraction:
        value = self.unary(depth)
        while (tok := self.peek()) is not None:
            if tok.kind == OP and tok.op in "*/":
                self.i += 1
                right = self.unary(depth)
                if tok.op == "*":
                    value *= right
                elif right == 0:
                    raise NotArithmetic("division by zero")
                else:
                    value /= right
            elif tok.kind == LP and tok.text[-1] == "(":  # 2(3 + 4): implicit product, brackets only
                value *= self.unary(depth)
            else:
                break
        return value

    def unary(self, depth: int) -> Fraction:
        tok = self.peek()
        if tok is not None and tok.kind == OP and tok.op in "+-":
            self.i += 1
            value = self.unary(depth + 1)
            return -value if tok.op == "-" else value
        return self.power(depth)

    def power(self, depth: int) -> Fraction:
        base = self.primary(depth)
        tok = self.peek()
        if tok is None or tok.kind != OP or tok.op != "^":
            return base
        self.i += 1
        exponent = self.unary(depth + 1)
        return _power(base, exponent)

    def primary(self, depth: int) -> Fraction:
        tok = self.take()
        if tok.kind == NUM:
            nxt = self.peek()
            if nxt is not None and nxt.kind in (NUM, FRAC):  # "3 1/2", "2\frac{1}{2}": mixed number or product
                raise NotArithmetic(f"ambiguous juxtaposition after {tok.text!r}")
            return tok.value
        if tok.kind == FRAC:
            top, bottom = self.group(depth), self.group(depth)
            if bottom == 0:
                raise NotArithmetic("division by zero")
            return top / bottom
        if tok.kind == LP:
            self.i -= 1
            value = self.group(depth)
            nxt = self.peek()
            if nxt is not None and nxt.kind in (NUM, FRAC):
                raise NotArithmetic("a number right after a bracket")
            return value
        raise NotArithmetic(f"unexpected {tok.text!r}")

    def group(self, depth: int) -> Fraction:
        opener = self.take()
        if opener.kind != LP:
            raise NotArithmetic(f"expected a bracket, got {opener.text!r}")
        value = self.expr(depth + 1)
        closer = self.take()
        if closer.kind != RP or "([{".index(opener.text[-1]) != ")]}".index(closer.text[-1]):
            raise NotArithmetic(f"unmatched bracket {opener.text!r}")
        return value


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1:
        raise NotArithmetic("non-integer exponent")
    n = int(exponent)
    size = max(base.numerator.bit_length(), base.denominator.bit_length(), 1)
    if size * abs(n) > MAX_POWER_BITS:
        raise NotArithmetic("power too large")
    if base == 0 and n < 0:
        raise NotArithmetic("division by zero")
    return base ** n
