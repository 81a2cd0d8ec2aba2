"""The paper's MATH generation prompt: the Minerva 4-shot examples, verbatim MATH train, never bank shots."""
import pytest

from conftest import small_spec
from flows.build.flow import build_bank, load_selection
from flows.runtime.banks import read_bank
from flows.core.data import load_problems
from flows.core.problem import normalize_text
from generators.fake import FakeGenerator
from flows.core.tasks import cot_template
from generators.prompts import MINERVA_MATH, MINERVA_MATH_IDS

pytestmark = pytest.mark.usefixtures("prefect_harness")


def math_spec(limit=None, few_shot=True):
    return small_spec(task="math", subjects=("algebra",), limit=limit, chunk_size=8, few_shot=few_shot)


def test_minerva_examples_are_math_train_reference_solutions(data_dir):
    train = {p.id: p for p in load_problems("math", "train", data_dir)}
    for uid, (question, solution) in zip(MINERVA_MATH_IDS, MINERVA_MATH):
        p = train[f"math/{uid}"]
        assert (p.question, p.solution) == (question, solution)
        assert "\\boxed{" in solution
    template = cot_template("math", few_shot=True)
    assert template.id == "math-cot-minerva4-v1" and template.examples == MINERVA_MATH
    prompt = template.prompt("What is $1+1$?")
    assert len(prompt) == 1 + 2 * 4 + 1 and prompt[1]["content"] == MINERVA_MATH[0][0]
    assert cot_template("math", few_shot=False).examples == ()


def test_minerva_problems_are_excluded_from_the_selection(data_dir):
    examples = {normalize_text(q) for q, _ in MINERVA_MATH}
    algebra = [p for p in load_problems("math", "train", data_dir) if (p.subject or "").lower() == "algebra"]
    assert sum(normalize_text(p.question) in examples for p in algebra) == 3  # three of the four are algebra
    chosen = load_selection.fn(math_spec(), str(data_dir))
    assert len(chosen) == len(algebra) - 3
    assert not {normalize_text(p.question) for p in chosen} & examples
    # the zero-shot template has no examples, so nothing is excluded
    assert len(load_selection.fn(math_spec(few_shot=False), str(data_dir))) == len(algebra)


def test_math_bank_records_the_minerva_template(tmp_path, data_dir):
    answers = {p.question: p.answer for p in load_problems("math", "train", data_dir)}
    gen = FakeGenerator(lambda prompt, s, rng: f"So the answer is $\\boxed{{{answers[prompt[-1]['content']]}}}$.")
    path = build_bank(math_spec(limit=8), data_dir=str(data_dir), out=str(tmp_path), generator=gen)
    table, meta = read_bank(path)
    rows = table.to_pylist()
    template = cot_template("math", few_shot=True)
    assert len(rows) == 8
    assert {r["template_id"] for r in rows} == {template.id} and {r["template_hash"] for r in rows} == {template.hash}
    assert meta["config"]["template"] == template.hash
    assert all(len(p) == 10 for prompts, _ in gen.calls for p in prompts)  # system, 4 examples, question
