"""Comparing two answer shapes (see :mod:`verifiers.structure`) given a comparator for leaves.

The same function runs twice: in the main process with the numeric leaf comparator (which may
answer ``None``: "cannot tell without sympy"), and in a worker with the symbolic one. ``used``
collects the names of the checks that took part, from which the Verdict's method is chosen.
"""
from __future__ import annotations

import re
from typing import Callable

from verifiers.numeric import parse_digits, parse_number
from verifiers.poly import polynomial_equal
from verifiers.relations import equations_proportional
from verifiers.structure import Alternatives, BaseN, Choice, Equation, Leaf, Matrix, Node, Seq, Text, Union, split_top

LeafEq = Callable[[Leaf, Leaf, set], "bool | None"]

_INFINITIES = (r"\infty", r"-\infty")
_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")
_METHOD_ORDER = ("symbolic", "polynomial", "numeric", "base", "choice", "text", "exact", "structure")


def method_name(used: set) -> str:
    for name in _METHOD_ORDER:
        if name in used:
            return name
    return "structure"


def _sides(node: Node) -> tuple[str, str] | None:
    """(lhs, rhs) of an equation whose right side is one expression, or None."""
    if isinstance(node, Equation):
        return (node.lhs, node.rhs.latex) if isinstance(node.rhs, Leaf) else None
    if isinstance(node, Leaf):
        parts = split_top(node.latex, "=")
        return (parts[0], parts[1]) if len(parts) == 2 and all(parts) else None
    return None


def _same_relation(g: tuple[str, str] | None, p: tuple[str, str] | None, used: set) -> bool:
    """Two equations with different left sides: equal only as proportional polynomial
    equations (:mod:`verifiers.relations`), decided in-process; anything else is unequal."""
    same = None if g is None or p is None else equations_proportional(g, p)
    used.add("structure" if same is None else "polynomial")
    return bool(same)


def numeric_leaf_eq(a: Leaf, b: Leaf, used: set) -> bool | None:
    """Exact-string, exact-rational (infinities included) or exact rational-function comparison
    of two leaves (see :mod:`verifiers.poly`); never equal: a number and a leaf holding a word
    (two or more letters not forming a command); None when either is outside those forms."""
    if a.latex == b.latex:
        used.add("exact")
        return True
    x = parse_number(a.latex)
    y = parse_number(b.latex)
    if (x is not None or a.latex in _INFINITIES) and (y is not None or b.latex in _INFINITIES):
        used.add("numeric")
        return x is not None and x == y  # two equal infinities were equal strings above
    if (x is None) != (y is None) and _WORD.search(a.latex if x is None else b.latex):
        used.add("structure")
        return False  # words beside a number ("not 0", "So there are 0") are not an expression equal to it
    sides = _sides(a), _sides(b)
    same = equations_proportional(*sides) if all(sides) else polynomial_equal(a.latex, b.latex)
    if same is not None:
        used.add("polynomial")
    return same


def _unwrap(node: Node) -> Node:
    while isinstance(node, Seq) and node.kind in ("list", "set") and len(node.items) == 1:
        node = node.items[0]
    return node


def _ordered(xs: tuple, ys: tuple, leaf_eq: LeafEq, used: set) -> bool | None:
    if len(xs) != len(ys):
        used.add("structure")
        return False
    unknown = False
    for x, y in zip(xs, ys):
        result = compare(x, y, leaf_eq, used)
        if result is False:
            return False
        unknown = unknown or result is None
    return None if unknown else True


def _unordered(xs: tuple, ys: tuple, leaf_eq: LeafEq, used: set) -> bool | None:
    if len(xs) != len(ys):
        used.add("structure")
        return False
    remaining = list(ys)
    for x in xs:
        match = None
        for j, y in enumerate(remaining):
            result = compare(x, y, leaf_eq, used)
            if result is None:
                return None
            if result:
                match = j
                break
        if match is None:
            return False
        remaining.pop(match)
    return True


def _vector(node: Matrix) -> tuple | None:
    if len(node.rows) == 1:
        return node.rows[0]
    if all(len(row) == 1 for row in node.rows):
        return tuple(row[0] for row in node.rows)
    return None


def _compare_seq(g: Seq, p: Seq, leaf_eq: LeafEq, used: set) -> bool | None:
    unordered = ("list", "set")
    if g.kind in unordered and p.kind in unordered:
        return _unordered(g.items, p.items, leaf_eq, used)
    if g.kind == "bracket" and p.kind == "bracket":
        if (g.left, g.right) != (p.left, p.right):
            used.add("structure")
            return False
        return _ordered(g.items, p.items, leaf_eq, used)
    bracket, bare = (g, p) if g.kind == "bracket" else (p, g)
    if bare.kind == "list" and (bracket.left, bracket.right) == ("(", ")"):
        return _ordered(g.items, p.items, leaf_eq, used)
    used.add("structure")
    return False


def _compare_special(g: Node, p: Node, used: set) -> bool | None:
    """Choices, text and base-n numerals; None when neither side is one of them."""
    for x, y in ((g, p), (p, g)):
        if isinstance(x, Choice):
            used.add("choice")
            if isinstance(y, Choice):
                return x.letter == y.letter
            return isinstance(y, Leaf) and y.latex.startswith(f"({x.letter})")
        if isinstance(x, BaseN):
            used.add("base")
            if isinstance(y, BaseN):
                return (x.digits, x.base) == (y.digits, y.base)
            return isinstance(y, Leaf) and parse_digits(y.latex) == x.digits
        if isinstance(x, Text):
            used.add("text")
            if isinstance(y, Text):
                return x.text == y.text
            return isinstance(y, Leaf) and y.latex.lower() == x.text
    return None


def _alternatives(g: Node, p: Alternatives, leaf_eq: LeafEq, used: set) -> bool | None:
    """Several boxes: equal to ``g`` as a list, or when every box is equal to ``g``."""
    whole = compare(g, Seq("list", p.parts), leaf_eq, used)
    if whole:
        return True
    each: bool | None = True
    for part in p.parts:
        result = compare(g, part, leaf_eq, used)
        if result is False:
            each = False
            break
        each = None if result is None else each
    if each is True:
        return True
    return None if None in (whole, each) else False


def compare(g: Node, p: Node, leaf_eq: LeafEq, used: set) -> bool | None:
    """Whether prediction ``p`` matches gold ``g``; None if ``leaf_eq`` could not decide."""
    if isinstance(p, Alternatives):
        return _alternatives(g, p, leaf_eq, used)
    if isinstance(g, Equation) and isinstance(p, Equation):
        if g.lhs != p.lhs:
            return _same_relation(_sides(g), _sides(p), used)
        return compare(g.rhs, p.rhs, leaf_eq, used)
    for eq, other in ((g, p), (p, g)):
        if isinstance(eq, Equation) and isinstance(other, Leaf) and _sides(other) and _sides(eq):
            return _same_relation(_sides(g), _sides(p), used)
    if isinstance(g, Equation):
        return compare(g.rhs, p, leaf_eq, used)
    if isinstance(p, Equation):
        return compare(g, p.rhs, leaf_eq, used)
    g, p = _unwrap(g), _unwrap(p)
    special = _compare_special(g, p, used)
    if special is not None:
        return special
    if isinstance(g, Leaf) and isinstance(p, Leaf):
        return leaf_eq(g, p, used)
    if isinstance(g, Seq) and isinstance(p, Seq):
        return _compare_seq(g, p, leaf_eq, used)
    if isinstance(g, Union) and isinstance(p, Union):
        return _unordered(g.parts, p.parts, leaf_eq, used)
    for u, s in ((g, p), (p, g)):
        if isinstance(u, Union) and isinstance(s, Seq) and s.kind == "list":
            return _unordered(u.parts, s.items, leaf_eq, used)
    if isinstance(g, Matrix) and isinstance(p, Matrix):
        if [len(r) for r in g.rows] != [len(r) for r in p.rows]:
            used.add("structure")
            return False
        return _ordered(sum(g.rows, ()), sum(p.rows, ()), leaf_eq, used)
    for m, s in ((g, p), (p, g)):
        if isinstance(m, Matrix) and isinstance(s, Seq) and s.kind == "bracket" and s.left in "([":
            vector = _vector(m)
            if vector is not None:
                return _ordered(vector, s.items, leaf_eq, used)
    used.add("structure")
    return False
