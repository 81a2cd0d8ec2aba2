"""``manyshot ablate``: banks of every mode, a MATH -> GSM8K transfer eval, seeds, reuse on rerun, skips."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import flows.build.flow as build
import flows.evaluate.flow as evaluate
from conftest import DATA_DIR, gsm8k_solver
from flows.ablate import load_spec, run_ablation
from flows.core.data import load_problems
from flows.report.inputs import read_inputs
from flows.evaluate.results import Skipped
from flows.core.specs import BuildError
from generators.fake import FakeGenerator

pytestmark = pytest.mark.usefixtures("prefect_harness")

SPEC = """
model = "embedded"
shots = [0, 2, 4]
seeds = 2
limit = 6
max_tokens = 64
reference = "reinforced"

[[banks]]
name = "gt"
mode = "ground-truth"
task = "gsm8k"
limit = 8

[[banks]]
name = "reinforced"
mode = "reinforced"
task = "gsm8k"
limit = 8
samples = 2

[[banks]]
name = "unsupervised"
mode = "unsupervised"
task = "gsm8k"
limit = 3

[[banks]]
name = "math"
mode = "reinforced"
task = "math"
levels = [1]
limit = 6
samples = 2

[[evals]]
task = "gsm8k"
"""


@pytest.fixture
def fake(monkeypatch):
    """One scripted model for builds and evals: GSM8K and MATH questions answered with their gold answer."""
    gsm8k = gsm8k_solver()
    math = {p.question: p.answer for p in load_problems("math", "train", DATA_DIR)}

    def script(prompt, sample, rng):
        question = prompt[-1]["content"]
        if question in math:
            return f"Simplify step by step. The answer is $\\boxed{{{math[question]}}}$."
        return gsm8k(prompt, sample, rng)

    gen = FakeGenerator(script)
    monkeypatch.setattr(build, "load_generator", lambda *a, **k: gen)
    monkeypatch.setattr(evaluate, "load_generator", lambda *a, **k: gen)
    return gen


def test_ablation_grid_with_transfer_then_rerun_reuses_everything(tmp_path, data_dir, fake):
    config = tmp_path / "grid.toml"
    config.write_text(SPEC)
    target = run_ablation(str(config), data_dir=str(data_dir), out=str(tmp_path / "runs"))
    calls = len(fake.calls)
    assert calls > 0

    summary = pd.read_csv(f"{target}/summary.csv")
    strict = summary[summary["metric"] == "strict"]
    assert set(strict["items"]) == {6}
    assert set(strict[strict["bank"] != "none"]["seeds"]) == {2}
    assert set(strict[strict["bank"] == "none"]["seeds"]) == {1}  # zero-shot uses no shots: one run serves every seed
    assert strict.groupby("bank")["k"].apply(sorted).to_dict() == {
        "none": [0], **{b: [2, 4] for b in strict["bank"].unique() if b.startswith(("gsm8k-ground", "gsm8k-rein", "math"))},
        **{b: [2] for b in strict["bank"].unique() if b.startswith("gsm8k-unsup")}}
    transfer = strict[strict["bank"].str.startswith("math-")]
    assert transfer["transfer"].all() and not strict[strict["bank"].str.startswith("gsm8k-")]["transfer"].any()
    assert (strict["accuracy"] == 1.0).all()  # the scripted model knows every gold answer

    text = (tmp_path / "runs" / "ablation-grid" / "summary.md").read_text()
    assert "reinforced (transfer)" in text and "flexible:" in text
    assert "has 3 usable shots, fewer than K=4" in text  # a skipped cell says why
    png = tmp_path / "runs" / "ablation-grid" / "accuracy-gsm8k.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "](accuracy-gsm8k.png)" in text
    report = (tmp_path / "runs" / "ablation-grid" / "report.html").read_text()
    assert "<img" in report and "data:image/png;base64," in report  # the HTML report, written beside the summary
    meta = json.loads((tmp_path / "runs" / "ablation-grid" / "summary.json").read_text())  # the same, as data
    assert list(meta["banks"]) == ["gt", "reinforced", "unsupervised", "math"] and len(meta["evals"]) == 1
    assert Path(meta["evals"][0]["folder"]).parent.name == "runs" and f"results: {meta['evals'][0]['folder']}" in text
    skipped = [Skipped(**s) for s in meta["evals"][0]["skipped"]]
    assert skipped and all(s.line in text for s in skipped)
    reinforced = Path(meta["banks"]["reinforced"]).stem  # the spec's reference, by its spec name
    assert meta["evals"][0]["reference"] == reinforced and f"reference: {reinforced}." in text
    paired = pd.read_csv(f"{target}/paired.csv")
    assert "### Paired differences" in text and set(paired["eval_task"]) == {"gsm8k"}
    assert (paired["difference"] == 0).all() and set(paired["comparison"]) == {"banks", "zero-shot"}
    structured = read_inputs(target).evals[0]
    (tmp_path / "runs" / "ablation-grid" / "summary.json").rename(tmp_path / "summary.json")
    legacy = read_inputs(target).evals[0]  # an ablation from before summary.json: parsed from its summary.md
    assert legacy.skipped == structured.skipped == skipped and legacy.folder == structured.folder
    (tmp_path / "summary.json").rename(tmp_path / "runs" / "ablation-grid" / "summary.json")

    again = run_ablation(str(config), data_dir=str(data_dir), out=str(tmp_path / "runs"))
    assert again == target and len(fake.calls) == calls  # banks and cells reused: no model call
    assert pd.read_csv(f"{target}/summary.csv").equals(summary)


@pytest.mark.parametrize("body, message", [
    ('[[banks]]\nname = "a"\nmode = "ground-truth"\ntask = "gsm8k"\n', "needs [[evals]]"),
    ('[[banks]]\nname = "a"\nmode = "ground-truth"\ntask = "gsm8k"\n[[evals]]\ntask = "gsm8k"\nbanks = ["b"]\n',
     "bank names"),
    ('shots = [0\n', "cannot read ablation spec"),
    ('[[banks]]\nname = "a"\nmode = "reinforced"\ntask = "gsm8k"\niterate_from = "b"\n'
     '[[banks]]\nname = "b"\nmode = "reinforced"\ntask = "gsm8k"\n[[evals]]\ntask = "gsm8k"\n',
     "iterate_from 'b' is not the name of an earlier bank"),
])
def test_bad_specs_name_the_problem(tmp_path, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(BuildError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_spec(path)


ITERATED = """
model = "embedded"
shots = [0, 2]
limit = 4
max_tokens = 64

[[banks]]
name = "first"
mode = "reinforced"
task = "gsm8k"
limit = 6
samples = 1

[[banks]]
name = "second"
mode = "reinforced"
task = "gsm8k"
limit = 6
samples = 1
iterate_from = "first"
prompt_shots = 2

[[evals]]
task = "gsm8k"
"""


def test_a_bank_iterates_from_an_earlier_bank_of_the_spec(tmp_path, data_dir, fake):
    config = tmp_path / "iter.toml"
    config.write_text(ITERATED)
    target = run_ablation(str(config), data_dir=str(data_dir), out=str(tmp_path / "runs"))
    text = (tmp_path / "runs" / "ablation-iter" / "summary.md").read_text()
    first, second = (line.split(": ", 1)[1] for line in text.splitlines() if line.startswith(("- first:", "- second:")))
    assert first != second
    prompted = [prompt for prompts, _ in fake.calls for prompt in prompts]
    first_rows = pd.read_parquet(first)
    head = set(first_rows["question"].head(2))  # the bank's first two shots make the prompt
    second_rows = pd.read_parquet(second)
    assert len(second_rows) == 4 and not head & set(second_rows["question"])  # all six but the prompt's two
    assert any(head <= {m["content"] for m in prompt} for prompt in prompted)  # those two shots were the prompt
    assert target.endswith("ablation-iter")
