"""A label task from a task file on the real vLLM engine (``embedded-tiny``): reinforced build, then an eval whose
shots are the prompt's user/assistant turns. The 135M model is weak; what is checked is the grading path."""
from __future__ import annotations

import os

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("vllm")

import verifiers  # noqa: E402
from conftest import tiny_engine  # noqa: E402
from flows.runtime.banks import read_bank  # noqa: E402
from flows.build.flow import build_bank  # noqa: E402
from flows.config import build_spec, eval_spec  # noqa: E402
from flows.evaluate.flow import evaluate  # noqa: E402
from flows.build.rounds import BuildError  # noqa: E402
from flows.core.taskfile import resolve  # noqa: E402

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("prefect_harness"), pytest.mark.timeout(900)]

TASK = """name = "parity-engine"
[data]
path = "parity.jsonl"
[split]
test = 4
[fields]
question = "Is {n} an even number? Answer Yes or No."
answer = "{even}"
[answer]
format = "label"
labels = ["Yes", "No"]
[[prompt.examples]]
question = "Is 6 an even number? Answer Yes or No."
rationale = "6 = 2 * 3, so 6 is divisible by 2.\\nThe answer is Yes"
"""


@pytest.fixture(scope="module")
def engine():
    yield from tiny_engine()


def test_a_label_task_file_builds_and_evaluates_on_embedded_tiny(engine, tmp_path):
    (tmp_path / "parity.jsonl").write_text("".join(f'{{"n": {n}, "even": "{"Yes" if n % 2 == 0 else "No"}"}}\n'
                                                   for n in range(11, 27)))
    (tmp_path / "parity.toml").write_text(TASK)
    name = resolve(str(tmp_path / "parity.toml"))
    spec = build_spec({"mode": "reinforced", "task": name, "limit": 8, "samples": 4, "rounds": 1,
                       "max_tokens": 48})
    try:
        bank = build_bank(spec, out=str(tmp_path / "banks"), generator=engine)
    except BuildError as exc:  # the tiny model may solve none; the error must say so, and nothing is written
        assert "no shot was kept" in str(exc) and not list((tmp_path / "banks").glob("*.parquet"))
        bank = build_bank(build_spec({"mode": "unsupervised", "task": name}), out=str(tmp_path / "banks"))
    table, meta = read_bank(bank)
    fmt = verifiers.Format("label", labels=("Yes", "No"))
    for row in table.to_pylist():
        assert row["rationale"] is None or verifiers.verify(row["gold_answer"], row["rationale"], fmt).correct
    assert meta["task_definition"]["answer"] == {"format": "label", "labels": ["Yes", "No"]}

    result = evaluate(eval_spec({"task": name, "banks": (bank,), "shots": (0, 2), "max_tokens": 48}),
                      out=str(tmp_path / "evals"), generator=engine)
    results = pd.read_parquet(result.folder / "results.parquet")
    assert len(results) == 4 * 2 and results["response"].str.len().gt(0).all()
    assert set(results["extracted_flexible"].dropna()) <= {"Yes", "No"}
    for row in results.itertuples():
        assert row.correct_strict == (row.extracted_strict == row.gold)
        assert row.correct_flexible == (row.extracted_flexible == row.gold)
