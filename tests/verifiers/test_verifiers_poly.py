"""The in-process rational-function check: what it accepts, what it refuses, and its bounds."""
from __future__ import annotations

import time

import pytest

from verifiers.poly import MAX_CHARS, polynomial_equal, rational_function


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("(x+1)^2", "x^2+2x+1", True),
        ("(x+1)^2", "x^2+1", False),
        (r"\frac{x^2-1}{x-1}", "x+1", True),
        (r"\frac{1}{x}+\frac{1}{y}", r"\frac{x+y}{xy}", True),
        ("0.5x", r"\frac{x}{2}", True),
        ("0.33", r"\frac{1}{3}", False),
        (r"2\pi r", r"r\pi\cdot 2", True),
        (r"\pi", "3.14159", False),
        ("2^{10}", "1024", True),
        ("a-b", "-b+a", True),
        ("a-b", "b-a", False),
    ],
)
def test_decides_exactly(a, b, expected):
    assert polynomial_equal(a, b) is expected
    assert polynomial_equal(b, a) is expected


@pytest.mark.parametrize(
    "text",
    [
        r"3\frac{1}{2}",  # a mixed number, not 3 * 1/2
        "f(x)",  # maybe a function application
        "x2", "x^23", "2^3^2", "x^{n}", "x^{-1}", "x^{1/2}",
        "e^2", "2i", "E", "I",  # constants, not variables
        r"\frac{d}{dx}x^2", r"\frac{dy}{dx}",  # derivatives
        r"\sqrt{2}", r"\sin x", "7*7", "{{7*7}}", "{x}", "x=1", "1,2", r"\frac{1}{0}", r"\frac{x}{x-x}",
        "", "(x+1", "x+",
    ],
)
def test_refuses_outside_the_subset(text):
    assert rational_function(text) is None
    assert polynomial_equal(text, "1") is None


def test_sizes_are_bounded_and_fast():
    start = time.perf_counter()
    assert rational_function("x" * (MAX_CHARS + 1)) is None
    assert rational_function("(a+b+c+d+e+f+g+h)^{24}".replace("e+", "j+")) is None
    assert rational_function("(" * 90 + "x" + ")" * 90) is not None
    assert rational_function("9" * 190 + "^{24}") is None
    assert rational_function("(x+1)^{24}(x-1)^{24}(y+1)^{24}") is None
    assert time.perf_counter() - start < 2.0


FAST_LEAVES = [
    "(x+1)^2", r"\frac{x^2-1}{x-1}", r"2\sqrt{2}", r"\sqrt{8}", r"\frac{\sqrt{3}}{2}", r"\sqrt[3]{16}",
    r"2\sqrt[3]{2}", r"(\sqrt{2}+\sqrt{3})^2", r"\frac{3}{\sqrt{5}}", r"9(\pi-2)", r"\frac{4\pi}{3}",
    r"\sqrt{\frac{2}{3}}", r"0.5\pi", r"-\frac{1}{2}x+3", r"\frac{1}{x}+\frac{1}{y}", "1.5", r"\sqrt{-4}",
]


@pytest.mark.parametrize("latex", FAST_LEAVES)
def test_worker_fast_reader_agrees_with_latex2sympy(latex):
    sympy = pytest.importorskip("sympy")
    from verifiers import poly, symbolic

    fast = poly.read(latex, symbolic._SYMPY)
    assert fast is not None
    slow = symbolic.latex2sympy(symbolic._exact_decimals(latex), normalization_config=symbolic._NORMALIZATION,
                                conversion_config=symbolic._CONVERSION)
    assert sympy.simplify(fast - slow) == 0
    assert symbolic.to_sympy(latex) == fast


@pytest.mark.parametrize("latex", [r"\frac{1}{x-x}", r"3\frac{1}{2}", r"\sqrt[10]{2}", r"\sqrt[x]{2}", "e^2",
                                   r"\sin x"])
def test_worker_fast_reader_refuses_the_rest(latex):
    pytest.importorskip("sympy")
    from verifiers import poly, symbolic

    assert poly.read(latex, symbolic._SYMPY) is None
