"""The labelled equivalence table and the public API of verifiers/."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

import verifiers
from verifier_cases import CASES, FLEXIBLE_CASES
from verifiers import Verdict, extract_answer, verify, verify_many



def _case_id(case) -> str:
    category, gold, pred, task, expected = case
    return f"{category}:{gold[:25]}|{pred[:25]}|{task}|{expected}"


def test_table_is_large_and_balanced():
    assert len(CASES) >= 300
    assert sum(1 for c in CASES if c[4]) >= 100
    assert sum(1 for c in CASES if not c[4]) >= 100


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_table(case):
    category, gold, pred, task, expected = case
    verdict = verify(gold, pred, task)
    assert verdict.correct is expected, verdict
    if verdict.correct:
        assert verdict.error is None
        assert verdict.method in {"exact", "numeric", "polynomial", "symbolic", "structure", "text", "choice", "base"}


@pytest.mark.parametrize("case", FLEXIBLE_CASES, ids=[_case_id(c) for c in FLEXIBLE_CASES])
def test_flexible_table(case):
    category, gold, pred, task, expected = case
    verdict = verify(gold, pred, task, mode="flexible")
    assert verdict.correct is expected, verdict
    assert verify_many([(gold, pred)], fmt=task, mode="flexible") == [verdict]


@pytest.mark.parametrize(
    "gold, response, task, mode, extraction",
    [
        ("5", "So the answer is \\boxed{5}.", "math", "strict", "boxed"),
        ("6", "Adding gives 6.\n**Answer:** 6", "math", "strict", "answer_phrase"),
        ("5", "Each box holds 5.\n#### 5", "number", "strict", "hashes"),
        (r"\frac{2}{7}", "Of the 7 outcomes, 2 are good, so the probability is $\\frac{2}{7}$.", "math", "flexible",
         "closing_statement"),
        ("18", "She sells 9 eggs and then makes $18 every day at the market", "number", "flexible", "last_number"),
        (r"\frac{2}{7}", "\\frac{2}{7}", "math", "flexible", "bare"),
    ],
)
def test_extraction_is_recorded(gold, response, task, mode, extraction):
    verdict = verify(gold, response, task, mode=mode)
    assert verdict.correct is True, verdict
    assert verdict.extraction == extraction


def test_closing_statement_needs_flexible_mode():
    response = "Of the 7 outcomes, 2 are good, so the probability is $\\frac{2}{7}$."
    assert verify(r"\frac{2}{7}", response).method == "no_answer"
    assert extract_answer(response, "math", "flexible") == r"\frac{2}{7}"


@pytest.mark.parametrize("task", ["math", "number"])
def test_verify_many_matches_verify_in_order(task):
    cases = [c for c in CASES if c[3] == task]
    pairs = [(gold, pred) for _, gold, pred, _, _ in cases]
    batch = verify_many(pairs, fmt=task, workers=2)
    assert [v.correct for v in batch] == [c[4] for c in cases]
    assert batch == [verify(g, p, task) for g, p in pairs]
    assert verify_many(iter(pairs[:5]), fmt=task, workers=1) == batch[:5]


def test_verify_many_sends_each_distinct_symbolic_pair_once(monkeypatch):
    from verifiers import pool

    shared = pool.get_pool()
    calls = []
    real_run = shared.run
    monkeypatch.setattr(shared, "run", lambda job, timeout_s: calls.append(job) or real_run(job, timeout_s))
    pairs = [(r"2\sqrt{2}", r"\sqrt{8}"), (r"2\sqrt{2}", r"So it is \boxed{\sqrt{8}}."), (r"2\sqrt{2}", r"\sqrt{6}"),
             ("3", "3.0"), (r"2\sqrt{2}", r"\sqrt{8}")]
    verdicts = verify_many(pairs, workers=2)
    assert [v.correct for v in verdicts] == [True, True, False, True, True]
    assert [v.extracted for v in verdicts] == [r"\sqrt{8}", r"\sqrt{8}", r"\sqrt{6}", "3.0", r"\sqrt{8}"]
    assert verdicts[1].extraction == "boxed" and verdicts[0].extraction == "bare"
    assert len(calls) == 2


def test_verdict_is_frozen_and_errors_are_never_correct():
    verdict = Verdict(True, "exact", "5")
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.correct = False
    with pytest.raises(ValueError):
        Verdict(True, "symbolic", "5", "timeout")


def test_version_and_exports():
    assert isinstance(verifiers.VERSION, str) and verifiers.VERSION.count(".") == 2
    for name in ("verify", "verify_many", "extract_answer", "Verdict", "VERSION"):
        assert hasattr(verifiers, name)


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        verify("1", "1", "algebra")
    with pytest.raises(ValueError):
        verify("1", "1", mode="loose")
    with pytest.raises(TypeError):
        verify("1", None)


@pytest.mark.parametrize(
    "response, task, strict, flexible",
    [
        ("So 9 * 2 = 18.\n#### 18", "number", "18", "18"),
        ("She makes 18 dollars. The answer is 18.", "number", "18", "18"),
        ("She makes $18 every day.", "number", None, "18"),
        ("Total: 1,000 dollars", "number", None, "1,000"),
        (r"First \boxed{4}, then \boxed{\frac{1}{2}}.", "math", r"\frac{1}{2}", r"\frac{1}{2}"),
        (r"The answer is $\boxed{\boxed{7}}$", "math", r"\boxed{7}", r"\boxed{7}"),
        ("The final answer is $x=3$. I hope it is correct.", "math", "x=3", "x=3"),
        ("We get 3 then 4.", "math", None, "4"),
        (r"Truncated \boxed{12", "math", None, "12"),
        ("No numbers at all.", "math", None, None),
        ("**Answer:** (C)", "math", "(C)", "(C)"),
    ],
)
def test_extract_answer_modes(response, task, strict, flexible):
    assert extract_answer(response, task) == strict
    assert extract_answer(response, task, "strict") == strict
    assert extract_answer(response, task, "flexible") == flexible


def test_flexible_mode_in_verify():
    response = "She sells 9 eggs and makes 18 dollars every day"
    assert verify("18", response, "number").correct is False
    assert verify("18", response, "number", mode="flexible").correct is True
    assert verify_many([("18", response)], fmt="number", mode="flexible")[0].correct is True


def test_extracted_and_method_are_reported():
    verdict = verify("5", r"Thus \boxed{x = 5}.")
    assert verdict == Verdict(True, "exact", "x = 5", None, "boxed")
    assert verify(r"\frac{1}{2}", "0.5").method == "numeric"
    assert verify(r"2\sqrt{2}", r"\sqrt{8}").method == "symbolic"
    assert verify("5", "some words here about things").method == "no_answer"


def test_python_escape_damage_is_repaired():
    assert verify(r"\frac{1}{2}", "\x0crac{1}{2}").correct is True
    assert verify("5", "\x08oxed{5}").correct is True


def test_main_process_never_imports_sympy_for_cheap_checks():
    code = (
        "import sys, verifiers\n"
        "assert verifiers.verify('12,345', '12345').correct\n"
        "assert verifiers.verify('\\\\frac{1}{2}', '0.5').correct\n"
        "assert not verifiers.verify('1/3', '0.33').correct\n"
        "assert 'sympy' not in sys.modules and 'latex2sympy2_extended' not in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=60)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_math500_boxed_solutions_verify_against_answers(data_dir):
    rows = _jsonl(data_dir / "math/test.jsonl")
    verdicts = verify_many([(r["answer"], r["solution"]) for r in rows], fmt="math")
    assert sum(v.correct for v in verdicts) >= 0.99 * len(rows)


def test_gsm8k_hash_answers_verify(data_dir):
    rows = _jsonl(data_dir / "gsm8k/test.jsonl")
    pairs = [(r["answer"].split("####")[-1].strip(), r["answer"]) for r in rows]
    verdicts = verify_many(pairs, fmt="number")
    assert all(v.correct for v in verdicts)
    assert all(extract_answer(r["answer"], "number") for r in rows)
