"""A task no code names, end to end: a CSV with two question columns, a numeric answer and a seeded holdout,
through a reinforced build (scripted fake model), an unsupervised bank, an eval, the HTML report and an export."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pandas as pd
import pytest

import verifiers
from flows.runtime.banks import read_bank
from flows.build.flow import build_bank
from flows.cli import main
from flows.config import build_spec, eval_spec
from flows.evaluate.flow import evaluate
from flows.build.rounds import BuildError
from flows.core.taskfile import resolve
from generators.fake import FakeGenerator

pytestmark = pytest.mark.usefixtures("prefect_harness")

TASK = """name = "orchard-e2e"
[data]
path = "data/orchard.csv"
[split]
test = 8
seed = 3
[fields]
question = "{Setup} {Ask}"
answer = "{Total}"
[answer]
format = "number"
"""


@pytest.fixture(scope="module")
def task_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("orchard")
    (folder / "data").mkdir()
    rows = ["Setup,Ask,Total"] + [f"\"A tree has {i} apples, and {i + 3} more grow.\",How many apples are there?,"
                                  f"{2 * i + 3}" for i in range(1, 31)]
    (folder / "data" / "orchard.csv").write_text("\n".join(rows) + "\n")
    (folder / "orchard.toml").write_text(TASK)
    return folder / "orchard.toml"


def solver(prompt, sample, rng):
    """Adds the two numbers of the question; sample 1 writes a wrong final answer."""
    a, b = map(int, re.findall(r"\d+", prompt[-1]["content"])[:2])
    return f"{a} + {b} = {a + b}.\nThe answer is {a + b + sample}"


def test_a_task_file_through_build_eval_report_and_export(task_file, tmp_path, capsys):
    assert main(["task", "check", str(task_file)]) == 0
    checked = capsys.readouterr().out
    assert "problems: train 22, test 8" in checked and checked.count("generation prompt ") == 3

    name = resolve(str(task_file))
    with pytest.raises(BuildError, match=r"orchard.toml: a ground-truth bank needs gold rationales"):
        build_bank(build_spec({"mode": "ground-truth", "task": name}), out=str(tmp_path / "banks"))

    spec = build_spec({"mode": "reinforced", "task": name, "samples": 2, "rounds": 1, "chunk_size": 8,
                       "require_valid_steps": True})
    bank = build_bank(spec, out=str(tmp_path / "banks"), generator=FakeGenerator(solver))
    table, meta = read_bank(bank)
    rows = table.to_pylist()
    assert len(rows) == 22 and {r["task"] for r in rows} == {name} and {r["split"] for r in rows} == {"train"}
    assert all(verifiers.verify(r["gold_answer"], r["rationale"], "number").correct for r in rows)
    assert all(r["steps_checked"] == 1 and r["steps_wrong"] == 0 for r in rows)
    definition = meta["task_definition"]
    assert definition["data"]["sha256"] == hashlib.sha256((task_file.parent / "data" / "orchard.csv")
                                                          .read_bytes()).hexdigest()
    assert meta["config"]["task_definition"] and rows[0]["dataset"].startswith(f"{name}:orchard.toml@")

    unsupervised = build_bank(build_spec({"mode": "unsupervised", "task": name}), out=str(tmp_path / "banks"))
    fake = FakeGenerator(solver)
    result = evaluate(eval_spec({"task": name, "banks": (bank, unsupervised), "shots": (0, 4), "limit": 8}),
                      out=str(tmp_path / "evals"), generator=fake)
    results = pd.read_parquet(result.folder / "results.parquet")
    assert len(results) == 8 * 3 and results["correct_strict"].all()  # K=0 once, K=4 per bank; greedy sample 0
    unsupervised_prompt = next(p for prompts, _ in fake.calls for p in prompts
                               if "You will be provided questions similar" in p[1]["content"])
    assert unsupervised_prompt[0]["content"].endswith('"The answer is N".')
    assert unsupervised_prompt[1]["content"].endswith('respond only with the answer to the final question, thinking '
                                                      'step by step. ' + unsupervised_prompt[0]["content"])
    assert json.loads((result.folder / "task.json").read_text())["definition"] == definition

    assert main(["report", str(result.folder)]) == 0
    html = (result.folder / "report.html").read_text()
    assert "orchard-e2e" in html and "A tree has" in html
    assert main(["bank", "export", bank, "--to", str(tmp_path / "export")]) == 0
    card = (tmp_path / "export" / "README.md").read_text()
    assert "orchard-e2e reinforced shot bank" in card and "22 shots for 22 orchard-e2e problems" in card
    assert main(["bank", "show", bank]) == 0
    assert '"path": "data/orchard.csv"' in capsys.readouterr().out
