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
