"""Relations that are equal after algebra, decided exactly in-process (no sympy).

* A linear inequality in one variable (``-x > -1``, ``2x + 3 \\le 7``) is solved to its interval.
* Two polynomial equations are the same relation when ``lhs - rhs`` of one is a nonzero constant
  multiple of the other's (``2x + 4y - 3 = 0`` and ``y = -\\frac{1}{2}x + \\frac{3}{4}``).

Both sides must lie in the subset :mod:`verifiers.poly` reads, with constant denominators (a
variable denominator could exclude points and is refused); anything else gives ``None``.
"""
from __future__ import annotations

from fractions import Fraction

from verifiers.poly import Refused, _add, _mul, rational_function


def _difference(lhs: str, rhs: str) -> dict | None:
    """``lhs - rhs`` as a polynomial, up to a nonzero constant factor; None outside the subset."""
    a, b = rational_function(lhs), rational_function(rhs)
    if a is None or b is None or any(m for den in (a[1], b[1]) for m in den if m):
        return None
    try:
        return _add(_mul(a[0], b[1]), _mul(b[0], a[1]), -1)
    except Refused:
        return None


def _sign_of_denominators(lhs: str, rhs: str) -> int:
    a, b = rational_function(lhs), rational_function(rhs)
    return 1 if a[1][()] * b[1][()] > 0 else -1


def _latex(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return rf"{sign}\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def linear_bound(lhs: str, op: str, rhs: str) -> tuple[str, str] | None:
    """``lhs op rhs`` solved for its one variable: (op, bound) with op one of ``< > \\le \\ge``
    and the bound as canonical LaTeX; None unless the relation is linear in a single letter."""
    diff = _difference(lhs, rhs)
    if diff is None:
        return None
    linear = [m for m in diff if m]
    if len(linear) != 1 or len(linear[0]) != 1 or linear[0][0][1] != 1 or linear[0][0][0].startswith("\\"):
        return None
    slope = diff[linear[0]] * _sign_of_denominators(lhs, rhs)
    bound = -diff.get((), Fraction(0)) / diff[linear[0]]
    if slope < 0:
        op = {r"\le": r"\ge", r"\ge": r"\le", "<": ">", ">": "<"}[op]
    return op, _latex(bound)


def equations_proportional(first: tuple[str, str], second: tuple[str, str]) -> bool | None:
    """Whether two polynomial equations, each as (lhs, rhs), hold for the same points (one's
    ``lhs - rhs`` a nonzero multiple of the other's); None when either is outside the subset."""
    p, q = _difference(*first), _difference(*second)
    if p is None or q is None:
        return None
    if not p or not q:
        return not p and not q
    if p.keys() != q.keys():
        return False
    pivot = max(p)
    return all(p[m] * q[pivot] == q[m] * p[pivot] for m in p)
