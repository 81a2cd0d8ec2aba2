"""Splitting a canonical answer into its shape: lists and sets (unordered), tuples and
intervals (ordered, bracket kinds kept), unions, matrices, equations, base-n numerals,
multiple-choice letters, text, and leaves (single expressions left to numeric/symbolic checks).

A linear inequality in one variable is solved to its interval (``-x > -1`` is ``(-\\infty,1)``,
:mod:`verifiers.relations`). The real line minus finitely many exact numbers (``\\mathbb{R}\\setminus\\{1\\}``, ``x\\ne 1``) becomes
the union of open intervals between them. This is string work only (no evaluation); it runs in
the main process and in the workers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from verifiers.numeric import Undefined, parse_number
from verifiers.relations import linear_bound
from verifiers.sanitize import InputRejected

MAX_NESTING = 60
MAX_ITEMS = 200
MAX_LEVELS = 6

_OPEN = "([{"
_CLOSE = ")]}"


@dataclass(frozen=True)
class Leaf:
    """One expression. A trailing percent sign is dropped: the problem's unit is percent, so
    ``50\\%`` stands for 50 (not 0.5)."""

    latex: str


@dataclass(frozen=True)
class Seq:
    """``kind``: ``list`` (bare commas) and ``set`` (``\\{\\}``) are unordered; ``bracket`` is
    ordered and keeps its delimiters (a tuple, point, vector or interval)."""

    kind: str
    items: tuple
    left: str = ""
    right: str = ""


@dataclass(frozen=True)
class Alternatives:
    """The contents of several boxes a response commits to together: equal to a gold answer as
    a list, or when every one of them is equal to it (one answer boxed in two forms)."""

    parts: tuple


@dataclass(frozen=True)
class Union:
    parts: tuple


@dataclass(frozen=True)
class Matrix:
    rows: tuple


@dataclass(frozen=True)
class Equation:
    lhs: str
    rhs: object


@dataclass(frozen=True)
class BaseN:
    digits: str
    base: int


@dataclass(frozen=True)
class Choice:
    letter: str


@dataclass(frozen=True)
class Text:
    text: str


Node = Leaf | Seq | Union | Matrix | Equation | BaseN | Choice | Text | Alternatives

_CHOICE = re.compile(r"\(?([A-J])\)?")
_BASE_N = re.compile(r"(?:\\text\{)?([0-9A-Za-z]+)\}?_\{?\(?([0-9]{1,2})\)?\}?")
_TEXT = re.compile(r"[A-Za-z][A-Za-z '\-]*[A-Za-z]\.?")
_WORD = re.compile(r"[A-Za-z]{2}")
_REALS_MINUS = re.compile(r"\(-\\infty,\\infty\)(?:\\setminus|\\backslash|-)(\\\{.*\\\})")
_VARIABLE = r"(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?'*"
_POINTS = r"[A-Z]{2,4}"
_LABEL = (rf"{_POINTS}|\|(?:{_POINTS}|{_VARIABLE})\||\\overline\{{{_POINTS}\}}|m?\\angle ?[A-Z]{{1,3}}"
          rf"|(?:{_VARIABLE}|{_POINTS}):(?:{_VARIABLE}|{_POINTS})")
_SIMPLE_LHS = re.compile(
    rf"{_VARIABLE}(?:\([A-Za-z]\))?|\\text\{{[^{{}}]*\}}|\({_VARIABLE}(?:,{_VARIABLE})+\)|{_LABEL}"
)
_MATRIX = re.compile(r"\\begin\{([pbB]?matrix|smallmatrix|array)\}(?:\{[lcr|]*\})?(.*)\\end\{\1\}", re.S)
_RELATION = re.compile(r"\\le(?![A-Za-z])|\\ge(?![A-Za-z])|<|>")
_INFINITY = r"\infty"


def check_nesting(text: str) -> None:
    depth = 0
    for ch in text:
        if ch in _OPEN:
            depth += 1
            if depth > MAX_NESTING:
                raise InputRejected(f"too_deeply_nested: more than {MAX_NESTING} levels")
        elif ch in _CLOSE:
            depth -= 1


def split_top(text: str, separator: str) -> list[str]:
    """Split at ``separator`` occurrences outside any bracket (and outside ``\\{ \\}``)."""
    parts, depth, start, i = [], 0, 0, 0
    n, width = len(text), len(separator)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in "{}":
            depth += 1 if text[i + 1] == "{" else -1
            i += 2
            continue
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif depth == 0 and text.startswith(separator, i):
            if separator[0] != "\\" or not text[i + width:i + width + 1].isalpha():
                parts.append(text[start:i])
                i += width
                start = i
                continue
        i += 1
    parts.append(text[start:])
    return parts


def _enclosed(text: str, left: str, right: str) -> bool:
    """Whether ``text`` is ``left ... right`` with its first opener closed only at the end."""
    if len(text) < len(left) + len(right) or not text.startswith(left) or not text.endswith(right):
        return False
    depth = 0
    last = len(text) - 1
    for i, ch in enumerate(text):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
            if depth == 0 and i != last:
                return False
    return depth == 0


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _items(parts: list[str], level: int) -> tuple:
    if len(parts) > MAX_ITEMS:
        raise InputRejected(f"too_many_items: {len(parts)}")
    return tuple(_parse(p.strip(), level + 1) for p in parts)


def parse_answer(text: str) -> Node:
    """The shape of a canonical answer (see :func:`verifiers.normalize.normalize`)."""
    check_nesting(text)
    return _parse(text.strip(), 0)


def _parse(text: str, level: int) -> Node:
    if level > MAX_LEVELS or not text:
        return Leaf(text)
    m = _CHOICE.fullmatch(text)
    if m and (text[0] == "(") == (text[-1] == ")"):
        return Choice(m[1])
    parts = [p for p in _separated(text) if p.strip()]
    if len(parts) > 1:
        items = _items(parts, level)
        return Seq("list", items)
    parts = split_top(text, r"\cup")
    if len(parts) > 1:
        return Union(_items(parts, level))
    for sign in ("=", r"\in"):
        node = _equation(text, sign, level)
        if node is not None:
            return node
    node = _inequality(text)
    if node is not None:
        return node
    node = _reals_minus(text)
    if node is not None:
        return node
    return _atom(text, level)


def _punctured_line(points: list[str]) -> Node | None:
    """The union of open intervals between ``points`` (exact numbers), or None when a point is
    not an exact number or two are equal."""
    try:
        values = [parse_number(p) for p in points]
    except Undefined:
        return None
    if not points or any(v is None for v in values) or len(set(values)) != len(values):
        return None
    ordered = [p for _, p in sorted(zip(values, points))]
    ends = ["-" + _INFINITY, *ordered, _INFINITY]
    return Union(tuple(Seq("bracket", (Leaf(a), Leaf(b)), "(", ")") for a, b in zip(ends, ends[1:])))


def _reals_minus(text: str) -> Node | None:
    m = _REALS_MINUS.fullmatch(text)
    if m is None or not _enclosed(m[1], r"\{", r"\}"):
        return None
    points = [p.strip() for p in split_top(m[1][2:-2], ",")]
    if len(points) > MAX_ITEMS:
        raise InputRejected(f"too_many_items: {len(points)}")
    return _punctured_line(points)


def _equation(text: str, sign: str, level: int) -> Node | None:
    parts = split_top(text, sign)
    if len(parts) != 2 or not parts[1].strip():
        return None
    lhs, rhs = parts[0].strip(), parts[1].strip()
    if _SIMPLE_LHS.fullmatch(lhs):
        return Equation(lhs, _parse(rhs, level + 1))
    return None


def _inequality(text: str) -> Node | None:
    excluded = split_top(text, r"\ne")
    if len(excluded) == 2 and _SIMPLE_LHS.fullmatch(excluded[0].strip()):
        return _punctured_line([excluded[1].strip()])
    pieces = _RELATION.split(text)
    ops = _RELATION.findall(text)
    if not ops or len(ops) > 2:
        return None
    pieces = [p.strip() for p in pieces]
    if not all(pieces) or not all(_balanced(p) for p in pieces):
        return None
    upper = {r"\le": "]", "<": ")"}
    lower = {r"\ge": "[", ">": "("}
    if len(ops) == 1:
        (a, b), op = pieces, ops[0]
        if _SIMPLE_LHS.fullmatch(b) and not _SIMPLE_LHS.fullmatch(a):
            a, b = b, a
            op = {r"\le": r"\ge", r"\ge": r"\le", "<": ">", ">": "<"}[op]
        if not _SIMPLE_LHS.fullmatch(a):
            solved = linear_bound(a, op, b)
            if solved is None:
                return None
            op, b = solved
        if op in upper:
            return Seq("bracket", (Leaf("-" + _INFINITY), Leaf(b)), "(", upper[op])
        return Seq("bracket", (Leaf(b), Leaf(_INFINITY)), "[" if op == r"\ge" else "(", ")")
    a, var, b = pieces
    if not _SIMPLE_LHS.fullmatch(var):
        return None
    if all(op in upper for op in ops):
        return Seq("bracket", (Leaf(a), Leaf(b)), "[" if ops[0] == r"\le" else "(", upper[ops[1]])
    if all(op in lower for op in ops):
        return Seq("bracket", (Leaf(b), Leaf(a)), lower[ops[1]], "]" if ops[0] == r"\ge" else ")")
    return None


def _separated(text: str) -> list[str]:
    """Items separated by top-level commas, or by semicolons when there is no top-level comma
    (``(0;0;0)``); both at once is refused (one item), since ``(0,5;1)`` may use decimal commas."""
    parts = split_top(text, ",")
    semi = split_top(text, ";")
    if len(semi) > 1:
        return semi if len(parts) == 1 else [text]
    return parts


def _atom(text: str, level: int) -> Node:
    braces = _enclosed(text, r"\{", r"\}")
    if braces or (_enclosed(text, "{", "}") and len(_separated(text[1:-1])) > 1):
        inner = text[2:-2] if braces else text[1:-1]  # a bare group without separators ({{7*7}}) stays opaque
        return Seq("set", _items([p for p in _separated(inner) if p.strip()], level))
    if text[0] in "([" and text[-1] in ")]" and _enclosed(text, text[0], text[-1]):
        inner = _separated(text[1:-1])
        if len(inner) == 1:
            return _parse(inner[0].strip(), level + 1) if text[0] == "(" and text[-1] == ")" else Leaf(text)
        return Seq("bracket", _items(inner, level), text[0], text[-1])
    m = _MATRIX.fullmatch(text)
    if m:
        rows = [r for r in split_top(m[2], "\\\\") if r.strip()]
        return Matrix(tuple(_items(split_top(r, "&"), level) for r in rows))
    m = _BASE_N.fullmatch(text)
    if m and 2 <= int(m[2]) <= 36 and all(int(d, 36) < int(m[2]) for d in m[1]):
        return BaseN(m[1].upper().lstrip("0") or "0", int(m[2]))
    if _TEXT.fullmatch(text) and _WORD.search(text) and not text.startswith("\\"):
        return Text(" ".join(text.lower().rstrip(".").split()))
    pm = split_top(text, r"\pm")
    if len(pm) == 2:
        return Seq("list", (_parse(pm[0] + "+" + pm[1], level + 1), _parse(pm[0] + "-" + pm[1], level + 1)))
    if text.endswith(r"\%"):
        return Leaf(text[:-2].strip())
    return Leaf(text)
