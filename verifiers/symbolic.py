"""Symbolic leaf comparison with sympy, for worker processes only.

LaTeX is parsed by latex2sympy2_extended (an ANTLR grammar), never by ``sympify``/``eval``;
leaves inside the strict subset of :mod:`verifiers.poly` (plus square and n-th roots) are built by
that reader instead, several times faster.
Decimal literals are rewritten to exact fractions before parsing, so ``0.33`` never equals
``1/3``. Importing this module imports sympy; the main process never needs to.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache

import sympy
from latex2sympy2_extended import NormalizationConfig, latex2sympy
from latex2sympy2_extended.latex2sympy2 import ConversionConfig

from verifiers import poly
from verifiers.compare import compare, method_name, numeric_leaf_eq
from verifiers.numeric import Undefined
from verifiers.structure import Leaf, Node

MAX_LEAF_CHARS = 600
PRECISION = 60
MAX_LOG10 = 10_000
TOLERANCE = sympy.Float(10) ** -40

_NORMALIZATION = NormalizationConfig(
    basic_latex=True, units=False, malformed_operators=True, nits=False, boxed="none", equations=False
)
_CONVERSION = ConversionConfig(
    interpret_as_mixed_fractions=True, interpret_simple_eq_as_assignment=False, lowercase_symbols=False
)
_DECIMAL = re.compile(r"(?<![0-9.])([0-9]*)\.([0-9]+)")
_PROBES = (sympy.Rational(17, 7), sympy.Rational(23, 11), sympy.Rational(3), sympy.Rational(31, 13))


class ParseFailure(ValueError):
    """latex2sympy could not read a leaf."""


class _Sympy:
    """The worker's algebra for :func:`verifiers.poly.read`: exact sympy values."""

    def number(self, text: str):
        return sympy.Rational(text)

    def symbol(self, name: str):
        return sympy.pi if name == r"\pi" else sympy.Symbol(name)

    def add(self, a, b, sign: int = 1):
        return a + b if sign > 0 else a - b

    def mul(self, a, b):
        return a * b

    def div(self, a, b):
        if b == 0:
            raise poly.Refused  # left to latex2sympy, whose result then reads as undefined
        return a / b

    def power(self, a, k: int):
        if a.is_Number and _log10_bound(a) * k > MAX_LOG10:
            raise poly.Refused  # latex2sympy keeps it unevaluated; the size check then rejects it
        return a ** k

    def root(self, a, k: int):
        return sympy.sqrt(a) if k == 2 else sympy.root(a, k)


_SYMPY = _Sympy()


def _exact_decimals(latex: str) -> str:
    return _DECIMAL.sub(lambda m: rf"(\frac{{{m[1]}{m[2]}}}{{1{'0' * len(m[2])}}})", latex)


@lru_cache(maxsize=4096)
def to_sympy(latex: str):
    """Parse one leaf; raises ParseFailure for anything latex2sympy rejects."""
    if len(latex) > MAX_LEAF_CHARS:
        raise ParseFailure(f"leaf_too_long: {len(latex)} characters")
    fast = poly.read(latex, _SYMPY)
    if fast is not None:
        return fast
    try:
        return latex2sympy(_exact_decimals(latex), normalization_config=_NORMALIZATION,
                           conversion_config=_CONVERSION)
    except Exception as exc:  # the ANTLR-based parser raises bare Exception on syntax errors
        raise ParseFailure(f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}") from exc


def _log10_bound(expr) -> float:
    """A rough upper bound on log10 of the magnitude of ``expr`` (symbols count as ~10)."""
    if expr.is_Integer or expr.is_Rational:
        return max(0, abs(expr.p).bit_length() - expr.q.bit_length() + 1) * 0.30103
    if expr.is_Atom:
        return 1.0
    if isinstance(expr, sympy.Pow):
        base, exponent = _log10_bound(expr.base), _log10_bound(expr.exp)
        if exponent > 15:
            return math.inf
        return max(base, 1.0) * 10 ** exponent
    if isinstance(expr, (sympy.factorial, sympy.gamma, sympy.factorial2, sympy.subfactorial)):
        n = _log10_bound(expr.args[0])
        return math.inf if n > 15 else 10 ** n * max(n, 1.0)
    bounds = [_log10_bound(arg) for arg in expr.args if isinstance(arg, sympy.Basic)]
    if isinstance(expr, sympy.Mul):
        return sum(bounds)
    return max(bounds, default=1.0) + 1.0


def _check_defined(expr) -> None:
    if not isinstance(expr, sympy.Basic):
        return
    if expr.has(sympy.nan, sympy.zoo):
        raise Undefined("undefined_value")
    if _log10_bound(expr) > MAX_LOG10:
        raise Undefined(f"number_too_large: more than 10^{MAX_LOG10}")


def _numeric(expr):
    """High-precision value of a constant expression, or None if it is not a finite number."""
    value = sympy.N(expr, PRECISION)
    if value.has(sympy.nan):
        raise Undefined("undefined_value")
    if not value.is_number or value.has(sympy.oo, -sympy.oo, sympy.zoo):
        return None
    return value


def _is_zero(diff, scale) -> bool | None:
    value = _numeric(diff)
    if value is None:
        return None
    return bool(abs(value) <= TOLERANCE * max(1, scale))


def _probe_equal(a, b) -> bool | None:
    """Compare at fixed sample points; None when a sample has no finite value."""
    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    for k, _ in enumerate(_PROBES):
        point = {s: _PROBES[(k + i) % len(_PROBES)] + i for i, s in enumerate(symbols)}
        va, vb = _numeric(a.xreplace(point)), _numeric(b.xreplace(point))
        if va is None or vb is None:
            return None
        if abs(va - vb) > TOLERANCE * max(1, abs(va)):
            return False
    return True


def _scalar_equal(a, b) -> bool:
    if a == b:
        return True
    if isinstance(a, sympy.Eq) or isinstance(b, sympy.Eq):
        return _equations_equal(a, b)
    if isinstance(a, (sympy.Rel, sympy.Set, sympy.logic.boolalg.Boolean)) or isinstance(
        b, (sympy.Rel, sympy.Set, sympy.logic.boolalg.Boolean)
    ):
        return False
    if not a.free_symbols and not b.free_symbols:
        diff = _is_zero(a - b, abs(_numeric(a) or 0))
        if diff is not None:
            return diff
        return sympy.simplify(a - b) == 0
    probed = _probe_equal(a, b)
    if probed is False:
        return False
    return probed is True or sympy.simplify(a - b) == 0


def _equations_equal(a, b) -> bool:
    if not (isinstance(a, sympy.Eq) and isinstance(b, sympy.Eq)):
        return False
    da, db = a.lhs - a.rhs, b.lhs - b.rhs
    if db == 0 or da == 0:
        return da == db
    ratio = sympy.simplify(da / db)
    return not ratio.free_symbols and ratio != 0 and ratio.is_finite is True


def sympy_equal(a, b) -> bool:
    """Mathematical equality of two parsed leaves (numbers, expressions, matrices, equations)."""
    _check_defined(a)
    _check_defined(b)
    a_matrix, b_matrix = isinstance(a, sympy.MatrixBase), isinstance(b, sympy.MatrixBase)
    if a_matrix or b_matrix:
        return a_matrix and b_matrix and a.shape == b.shape and all(
            sympy_equal(x, y) for x, y in zip(a, b)
        )
    return _scalar_equal(a, b)


def symbolic_leaf_eq(a: Leaf, b: Leaf, used: set) -> bool:
    quick = numeric_leaf_eq(a, b, used)
    if quick is not None:
        return quick
    used.add("symbolic")
    return sympy_equal(to_sympy(a.latex), to_sympy(b.latex))


def compare_symbolic(gold: Node, pred: Node) -> tuple[bool, str]:
    """Full comparison of two answer shapes with symbolic leaves: (correct, method)."""
    used: set = set()
    result = compare(gold, pred, symbolic_leaf_eq, used)
    return bool(result), method_name(used)


def warm_up() -> None:
    """Exercise parsing, numeric evaluation, probing and simplification once, so that sympy's
    lazily imported machinery is loaded at worker start rather than inside a job's deadline."""
    for gold, pred in ((r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}"), (r"x^{1/2}\cdot x", r"x^{3/2}"),
                       ("2x+3y=6", "4x+6y=12"), (r"\sin(\pi/6)", r"\log_2 8")):
        compare_symbolic(Leaf(gold), Leaf(pred))
    sympy.simplify(sympy.Symbol("x") ** 2 / sympy.Symbol("x") - sympy.sqrt(8))


# Common shapes of final answers. The LaTeX parser (ANTLR) builds its prediction tables lazily,
# token context by token context, which makes a cold parse several times slower than a warm
# one; workers parse these while idle (see ``verifiers.worker``).
IDLE_WARM_UP = (
    r"\frac{3}{4}", r"-\frac{5}{2}", r"\frac{a+b}{c}", r"\frac{\sqrt{3}}{2}", r"\dfrac{1}{x+1}",
    r"2\sqrt{5}", r"\sqrt[3]{27}", r"\sqrt{\frac{2}{3}}", r"3+2\sqrt{2}", r"\frac{1+\sqrt{5}}{2}",
    r"4\pi", r"\frac{\pi}{6}", r"2\pi r^2", r"\pi^2-1", r"0.25\pi", r"e^{x}", r"e^{-2}",
    r"x^{2}+3x-4", r"(x-2)^2", r"x^3-y^3", r"2^{-3}", r"10^{6}", r"3.5\times10^{4}", r"1.5\cdot 2",
    r"\sin x", r"\cos^2\theta", r"\tan(\frac{\pi}{4})", r"\arctan 1", r"\log_{3} 81", r"\ln 2",
    r"\log 100", r"5!", r"\binom{6}{3}", r"\dbinom{n}{2}", r"|x-1|", r"\left|3\right|", r"x_1+x_2",
    r"a_{n}", r"\theta", r"\alpha+\beta", r"i^2", r"3-4i", r"\infty", r"-\infty", r"\pm 3",
    r"\begin{pmatrix}1\\2\end{pmatrix}", r"\begin{pmatrix}1&0\\0&1\end{pmatrix}", r"\text{cm}",
    r"\lfloor 2.5\rfloor", r"\lceil x\rceil", r"\%", r"f(x)", r"\frac{d}{dx}x^2", r"\sum_{k=1}^{n}k",
    r"\max(1,2)", r"\overline{3}", r"\mathbb{R}", r"\{1,2\}", r"[0,1)", r"x\le 3", r"x^{\frac{1}{2}}",
)


def idle_warm_up_step(latex: str) -> None:
    """Parse one idle warm-up expression; one that the parser rejects still warms it."""
    try:
        to_sympy(latex)
    except ParseFailure:
        pass


__all__ = ["IDLE_WARM_UP", "ParseFailure", "compare_symbolic", "idle_warm_up_step", "sympy_equal", "to_sympy",
           "warm_up"]
