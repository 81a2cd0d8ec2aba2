"""Answer formats (verifiers.formats): each format in both directions, with hard negatives next to each."""
from __future__ import annotations

import pytest

import verifiers
from verifiers import Format

QUESTION = "What color is the sky?\nOptions:\n(A) green\n(B) blue\n(C) red"
TF = Format("label", labels=("True", "False"))
YN = Format("label", labels=("Yes", "No"))


def ok(gold, pred, fmt, mode="strict", question=None):
    return verifiers.verify(gold, pred, fmt, mode=mode, question=question).correct


@pytest.mark.parametrize("gold,pred,right", [
    ("51", "51", True), ("51", "51.0", True), ("51", "So she has 51 apples.\nThe answer is 51.0", True),
    ("1200", "The answer is 1,200 dollars", True),
    ("51", "5.1", False), ("51", "The answer is 5.1", False), ("5.1", "51", False),
])
def test_number(gold, pred, right):
    assert ok(gold, pred, "number") is right


def test_legacy_task_names_are_formats():
    assert ok("51", "The answer is 51", "number") and verifiers.verify("51", "51.0", fmt="number").correct
    assert ok("\\frac{1}{2}", "The answer is $\\boxed{0.5}$", "math")
    with pytest.raises(ValueError, match="unknown"):
        verifiers.verify("1", "1", "chess")


@pytest.mark.parametrize("pred,right", [
    ("(B)", True), ("B", True), ("the answer is (B) blue", True), ("So the answer is (B).", True),
    ("The answer is blue.", True), ("The answer is \\boxed{B}", True),
    ("(A)", False), ("The answer is (AB)", False), ("The answer is (A) or (B)", False),
    ("The answer is (B) and (C)", False), ("The answer is A, B", False), ("The answer is (A) blue", False),
    ("The answer is green.", False), ("I think it is blue", False),
])
def test_choice_strict(pred, right):
    assert ok("(B)", pred, "choice", question=QUESTION) is right


def test_choice_gold_forms_and_flexible():
    assert ok("B", "The answer is (B)", "choice") and ok("(B)", "The answer is B", "choice")
    assert ok("blue", "The answer is (B)", "choice", question=QUESTION)  # gold given as the option's text
    assert not ok("(B)", "Let me think... (B) looks right", "choice", question=QUESTION)
    assert ok("(B)", "Let me think... (B) looks right", "choice", "flexible", QUESTION)
    assert not ok("(B)", "(A) is wrong. (B) is wrong too. (C)", "choice", "flexible", QUESTION)
    assert verifiers.parse_gold("(AB)", "choice") is None and verifiers.parse_gold("(D)", "choice", QUESTION) is None


@pytest.mark.parametrize("pred,right", [
    ("True", True), ("true", True), ("The answer is True.", True), ("The answer is **true**", True),
    ("So the answer is TRUE, clearly.", True),
    ("not True", False), ("The answer is not True", False), ("False", False), ("The answer is False.", False),
    ("The answer is True or False", False), ("The answer is Truely", False), ("It is True", False),
])
def test_label_strict(pred, right):
    assert ok("True", pred, TF) is right


def test_label_committed_one_wins_and_flexible():
    assert not ok("Yes", "yes and no", YN) and not ok("Yes", "The answer is yes and no", YN)
    assert ok("No", "At first yes, but the answer is no.", YN)
    assert ok("Yes", "Thinking it through, the claim holds.\nYes", YN, "flexible")
    assert not ok("True", "Thinking it through, this is not True", TF, "flexible")
    assert ok("False", "Thinking it through, this is not True. False", TF, "flexible")
    assert verifiers.parse_gold("maybe", YN) is None and verifiers.parse_gold("no", YN) == "No"


def test_label_set_is_validated():
    with pytest.raises(ValueError, match="needs its labels"):
        Format("label")
    with pytest.raises(ValueError, match="distinct"):
        Format("label", labels=("Yes", "yes"))
    with pytest.raises(ValueError, match="apply to the exact format"):
        Format("number", ignore_punctuation=True)


@pytest.mark.parametrize("gold,pred,fmt,right", [
    ("] )", "The answer is ] )", Format("exact"), True),
    ("] )", "The answer is ) ]", Format("exact"), False),
    ("] )", "The answer is ])", Format("exact"), False),
    ("] )", "The answer is ])", Format("exact", ignore_whitespace=True), True),
    ("apple banana cherry", "So the answer is Apple banana  cherry.", Format("exact"), True),
    ("apple banana cherry", "So the answer is apple cherry banana.", Format("exact"), False),
    ("Apple", "The answer is apple", Format("exact", ignore_case=False), False),
    ("hello, world", "The answer is hello world", Format("exact", ignore_punctuation=True), True),
    ("hello, world", "The answer is hello world", Format("exact"), False),
    ("42 km", "The answer is 42", Format("exact", regexes_to_ignore=(r"\s*km$",)), True),
])
def test_exact(gold, pred, fmt, right):
    assert ok(gold, pred, fmt) is right


def test_exact_flexible_reads_the_last_line():
    fmt = Format("exact")
    assert not ok("a b", "Sorting the words.\na b", fmt) and ok("a b", "Sorting the words.\na b", fmt, "flexible")
    with pytest.raises(ValueError, match="not a regular expression"):
        Format("exact", regexes_to_ignore=("(",))


@pytest.mark.parametrize("fmt", [Format("choice"), TF, Format("exact")])
def test_hostile_inputs_are_refused_not_raised(fmt):
    for pred in ("The answer is \x00(B)", "x" * 500_000, "The answer is " + "(" * 5_000):
        verdict = verifiers.verify("(B)" if fmt.name == "choice" else "True", pred, fmt)
        assert not verdict.correct and verdict.method in ("rejected", "no_answer")
    with pytest.raises(TypeError):
        verifiers.verify("A", None, fmt)  # type: ignore[arg-type]


def test_instructions_and_answer_lines_round_trip():
    for fmt, gold in ((Format("number"), "51"), (Format("math"), "\\frac{1}{2}"), (Format("choice"), "(B)"),
                      (TF, "True"), (Format("exact"), "] )")):
        assert "step by step" in verifiers.instruction(fmt)
        assert ok(gold, "Some reasoning.\n" + verifiers.answer_line(gold, fmt), fmt)
    assert "True, False" in verifiers.instruction(TF)


def test_step_checks_only_for_arithmetic_formats():
    assert verifiers.check_steps("3 * 4 = 13", "number").wrong == 1
    assert verifiers.check_steps("3 + 4 = 8", "math").wrong == 1
    assert verifiers.check_steps("3 * 4 = 13", TF).checked == 0


def test_verify_many_pairs_questions_with_answers():
    verdicts = verifiers.verify_many([("(B)", "The answer is blue"), ("(A)", "The answer is blue")], "choice",
                                     questions=[QUESTION, QUESTION])
    assert [v.correct for v in verdicts] == [True, False]
    with pytest.raises(ValueError, match="questions"):
        verifiers.verify_many([("A", "A")], "choice", questions=[])


def test_bare_word_lists_are_answers_not_responses():
    words = "apple banana cherry damson elder fig"
    assert verifiers.parse_gold(words, "exact") == words and ok(words, words, Format("exact"))
    assert ok(words, f"Sorting them.\nSo the answer is {words}.", Format("exact"))


@pytest.mark.parametrize("fmt", [Format("choice"), TF, Format("exact")])
def test_long_runs_are_linear(fmt):
    import time

    start = time.monotonic()
    for pred in ("The answer is " + " " * 300_000 + "x", "The answer is " + "*" * 300_000 + "x",
                 "(" + "A" * 300_000, "not " * 90_000 + "True"):
        verifiers.verify("(B)" if fmt.name == "choice" else "True", pred, fmt, mode="flexible")
    assert time.monotonic() - start < 5


def test_wrapped_answers_are_unwrapped_and_brackets_kept():
    assert ok("} ] )", "The answer is `} ] )`", Format("exact"))
    assert ok("True", "The answer is $\\text{True}$", TF) and ok("(B)", "The answer is **\\textbf{(B)}**", "choice")
