"""Commitment rules (verifiers.commit) and exact relations (verifiers.relations), unit by unit;
the labelled end-to-end cases are in verifier_cases.py (issue 27 categories)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from verifiers.commit import final_box, quoted, stated_value, withdrawn
from verifiers.relations import equations_proportional, linear_bound


@pytest.mark.parametrize("text, content", [
    (r"So \boxed{1}, \boxed{2}, \boxed{3}.", "1, 2, 3"),
    (r"$x = \boxed{2}$ and $y = \boxed{3}$", "2, 3"),
    (r"\boxed{1} red and \boxed{2} blue", "1, 2"),
    (r"\boxed{4}, \boxed{4}", "4"),
    (r"We get $\boxed{4}$, then $\boxed{5}$.", "5"),
    (r"$\boxed{4}$ and then $\boxed{5}$", "5"),
    (r"First \boxed{4}. Oops, correcting: \boxed{5}", "5"),
    (r"\boxed{2}. If $x=\boxed{3}$, which is impossible.", "2"),
    (r"\boxed{2}, \boxed{3} which is wrong", "2"),  # a withdrawn box ends the run
    ('\\boxed{2}. The problem says "use \\boxed{3}".', "2"),
    (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
])
def test_final_box(text, content):
    assert final_box(text)[1] == content


def test_final_box_edges():
    assert final_box("no box here") is None
    assert final_box(r"\boxed{3}, which is impossible") is None
    assert final_box(r"So \boxed{5} ... final: \boxed{12") == (len(r"So \boxed{5} ... final: "), None, False)
    assert final_box(r"\boxed{1}, \boxed{2}")[2] and not final_box(r"\boxed{1}, \boxed{1}")[2]


@pytest.mark.parametrize("rest, expected", [
    (", which is impossible.", True),
    ("$. This is impossible, so we retry.", True),
    ("$, since $x=-1$ is extraneous.", False),
    (" (the root $-1$ is extraneous).", False),
    (". The other root is extraneous.", False),
    (". We double-check: it is correct.", False),
])
def test_withdrawn(rest, expected):
    text = r"x = \boxed{3}" + rest
    assert withdrawn(text, len(r"x = \boxed{3}")) is expected


def test_quoted_is_per_line():
    text = 'He wrote "the answer is 12" here.\nThe answer is 15'
    assert quoted(text, text.index("the answer is 12"))
    assert not quoted(text, text.index("The answer is 15"))


@pytest.mark.parametrize("statement, value", [
    ("We find that $x < 3$.", "x < 3"),
    ("Answer $ 9 $", "9"),
    ("So there are 3 apples.", "3"),
    ("The count is $4{,}096$.", "4{,}096"),
    ("Not $3$.", None), ("Is it $3$?", None), ("x exceeds 5", None), ("It is 2 or 3.", None),
    ("AB = 5", None), ("42", None), ("Half of 10", None), ("One. Two is $3$.", None),
])
def test_stated_value(statement, value):
    assert stated_value(statement) == value


def test_stated_value_after_final_answer_needs_no_stating_word():
    assert stated_value("Jane started 3 hours ago", committed=True) == "3"
    assert stated_value("Jane started 3 hours ago") is None
    assert stated_value("Jane started more than 3 hours ago", committed=True) is None


@pytest.mark.parametrize("lhs, op, rhs, solved", [
    ("-x", ">", "-1", ("<", "1")),
    ("2x+3", r"\le", "7", (r"\le", "2")),
    ("-3x", r"\ge", "-6", (r"\le", "2")),
    (r"\frac{x}{-2}", "<", "1", (">", "-2")),
    ("3x", "<", "1", ("<", r"\frac{1}{3}")),
    ("x^2", "<", "4", None), ("x+y", "<", "1", None), ("2", "<", "3", None), (r"\frac{1}{x}", "<", "1", None),
])
def test_linear_bound(lhs, op, rhs, solved):
    assert linear_bound(lhs, op, rhs) == solved


@pytest.mark.parametrize("first, second, expected", [
    (("2x+4y-3", "0"), ("y", r"-\frac{1}{2}x+\frac{3}{4}"), True),
    (("2x+4y-3", "0"), ("y", r"-\frac{1}{2}x+\frac{3}{2}"), False),
    (("x", "2"), ("2x", "4"), True),
    (("x", "2"), ("y", "2"), False),
    (("x", "2"), ("x^2", "4"), False),
    (("x", "x"), ("y", "y"), True),
    (("x", r"\sqrt{2}"), ("2x", r"2\sqrt{2}"), None),
])
def test_equations_proportional(first, second, expected):
    assert equations_proportional(first, second) is expected


def test_issue27_rules_never_import_sympy():
    code = (
        "import sys, verifiers\n"
        "assert verifiers.verify('x<1', '-x>-1').correct\n"
        "assert verifiers.verify('y = -\\\\frac{1}{2}x + \\\\frac{3}{4}', '2x + 4y - 3 = 0').correct\n"
        "assert verifiers.verify('9', 'Answer $ 9 $').correct\n"
        "assert verifiers.verify('1', '|AB| = 1').correct\n"
        "assert verifiers.verify('(0,0,0)', '(0;0;0)').correct\n"
        "assert verifiers.verify('\\\\{1,2,3\\\\}', 'So \\\\boxed{1}, \\\\boxed{2}, \\\\boxed{3}.').correct\n"
        "assert verifiers.verify('11111100', '11,\\\\! 111,\\\\! 100').correct\n"
        "assert 'sympy' not in sys.modules and 'latex2sympy2_extended' not in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=60)
