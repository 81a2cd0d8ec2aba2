"""Many-shot prompts, leakage, budgets, metrics and the eval flow with the scripted fake generator."""
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import gsm8k_solver
from flows.build.flow import build_bank
from flows.core.specs import BuildSpec, EvalError, EvalSpec, Selection
from flows.core.data import load_problems
from flows.evaluate.flow import evaluate
from flows.evaluate.prompts import BankView, contaminated, many_shot_prompt
from flows.evaluate.shot_selection import shot_order
from flows.evaluate.metrics import bootstrap_ci, markdown_table, summarize
from generators.fake import FakeGenerator


def view(n=10, rationale=True, source="reinforced"):
    rows = [{"shot_id": f"s{i:02d}", "problem_id": f"p{i}", "question": f"Question {i}?", "task": "gsm8k",
             "rationale": f"Answer {i}. The answer is {i}" if rationale else None, "source": source} for i in range(n)]
    return BankView.from_rows("bank", rows)


def test_shot_orders_are_seeded_and_prompts_nest():
    v = view()
    assert shot_order(v, 0) == shot_order(v, 0) and shot_order(v, 0) != shot_order(v, 1)
    order = shot_order(v, 0)
    small, big = many_shot_prompt("gsm8k", order[:2], "Q?"), many_shot_prompt("gsm8k", order[:4], "Q?")
    assert big[:-1][:len(small) - 1] == small[:-1]
    assert len(big) == 1 + 2 * 4 + 1 and big[-1] == {"role": "user", "content": "Q?"}


def test_unsupervised_prompt_follows_the_paper_format():
    prompt = many_shot_prompt("gsm8k", shot_order(view(rationale=False, source="unsupervised"), 0)[:3], "Test?")
    listing = prompt[1]["content"]
    assert listing.startswith("You will be provided Problems similar") and listing.count("Problem:") == 3
    assert "respond only with the Solution of the final Problem" in listing
    assert [m["role"] for m in prompt[3:7]] == ["user", "assistant", "user", "assistant"]  # solved demos
    assert prompt[-1]["content"] == "Test?"


def test_leakage_detection(data_dir):
    test = load_problems("gsm8k", "test", data_dir)[:5]
    rows = [{"shot_id": "a", "problem_id": "x", "question": test[2].question.upper() + "  ", "task": "gsm8k",
             "rationale": "r", "source": "reinforced"},
            {"shot_id": "b", "problem_id": "y", "question": "Fresh question?", "task": "gsm8k", "rationale": "r",
             "source": "reinforced"}]
    leaked = contaminated(BankView.from_rows("b", rows), test)
    assert leaked == {"x"}
    assert [s.problem_id for s in shot_order(BankView.from_rows("b", rows), 0, leaked)] == ["y"]


def test_bootstrap_and_summary_on_known_inputs():
    low, high = bootstrap_ci([1.0] * 50 + [0.0] * 50)
    assert 0.39 < low < 0.5 < high < 0.61
    assert bootstrap_ci([1.0, 1.0]) == (1.0, 1.0)
    base = {"bank": "b", "source": "reinforced", "transfer": False, "k": 4, "extracted_flexible": None,
            "correct_flexible": False}
    rows = []
    for seed in (0, 1):
        for item in range(4):
            rows.append(base | {"seed": seed, "item_id": str(item), "sample": 0, "extracted_strict": "1",
                                "correct_strict": item < 2 + seed})
    summary = summarize(pd.DataFrame(rows))
    strict = summary[summary.metric == "strict"].iloc[0]
    assert strict["accuracy"] == pytest.approx(0.625) and strict["items"] == 4 and strict["seeds"] == 2
    assert (strict.seed_min, strict.seed_max) == (0.5, 0.75)


def test_summary_from_parquet_with_missing_answers(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = {"bank": ["b"] * 2, "source": ["s"] * 2, "transfer": [False] * 2, "k": [0, 0], "seed": [0, 0],
            "item_id": ["1", "2"], "sample": [0, 0], "extracted_strict": [None, "3"], "correct_strict": [False, True],
            "extracted_flexible": [None, None], "correct_flexible": [False, False]}
    pq.write_table(pa.table(rows), tmp_path / "r.parquet")
    summary = summarize(pq.read_table(tmp_path / "r.parquet").to_pandas())
    assert summary.query("metric == 'strict'").accuracy.iloc[0] == 0.5
    assert summary.query("metric == 'flexible'").accuracy.iloc[0] == 0.0


def test_majority_vote_over_samples():
    base = {"bank": "b", "source": "s", "transfer": False, "k": 0, "seed": 0, "item_id": "1",
            "extracted_flexible": None, "correct_flexible": False}
    rows = [base | {"sample": i, "extracted_strict": a, "correct_strict": a == "5"} for i, a in enumerate("575")]
    assert summarize(pd.DataFrame(rows)).query("metric == 'strict'").accuracy.iloc[0] == 1.0
    rows = [base | {"sample": i, "extracted_strict": a, "correct_strict": a == "5"} for i, a in enumerate("577")]
    assert summarize(pd.DataFrame(rows)).query("metric == 'strict'").accuracy.iloc[0] == 0.0
    for answers, score in (("57", 1.0), ("75", 0.0), ("N5", 1.0), ("NN", 0.0)):  # a tie goes to the answer seen first
        rows = [base | {"sample": i, "extracted_strict": None if a == "N" else a, "correct_strict": a == "5"}
                for i, a in enumerate(answers)]
        assert summarize(pd.DataFrame(rows)).query("metric == 'strict'").accuracy.iloc[0] == score


@pytest.mark.usefixtures("prefect_harness")
def test_eval_flow_end_to_end_with_fake(tmp_path, data_dir):
    solver = gsm8k_solver()
    bank = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=12)),
                      data_dir=str(data_dir), out=str(tmp_path / "banks"))
    gen = FakeGenerator(solver)
    spec = EvalSpec(task="gsm8k", banks=(bank,), shots=(0, 2, 4), seeds=2, limit=6, max_tokens=32)
    folder = evaluate(spec, data_dir=str(data_dir), out=str(tmp_path / "evals"), generator=gen).folder
    results = pq.read_table(f"{folder}/results.parquet").to_pandas()
    assert len(results) == 6 * (1 + 2 * 2) and results["correct_strict"].all()
    assert sorted(results.groupby(["seed", "k"]).size().index.tolist()) == [(0, 0), (0, 2), (0, 4), (1, 2), (1, 4)]
    cell = results[(results.k == 4) & (results.seed == 1)]
    assert cell["prompt_hash"].nunique() == 6 and (cell["prompt_tokens"] > 0).all()
    bank_ids = set(pq.read_table(bank, columns=["shot_id"]).column("shot_id").to_pylist())
    assert all(len(ids) == k and set(ids) <= bank_ids for ids, k in zip(results["shot_ids"], results["k"]))
    two = results[(results.k == 2) & (results.seed == 1)]["shot_ids"].iloc[0]
    assert list(cell["shot_ids"].iloc[0][:2]) == list(two)  # prompts nest: K=4 extends K=2's shots, in order
    summary = pd.read_csv(f"{folder}/summary.csv")
    assert set(summary["k"]) == {0, 2, 4} and (summary["accuracy"] == 1.0).all()
    assert (tmp_path / "evals").joinpath(folder, "accuracy.png").stat().st_size > 1000
    calls = len(gen.calls)
    assert calls == 5 and [s.seed for _, s in gen.calls] == [0, 0, 0, 1, 1]
    written = Path(folder, "results.parquet").stat().st_mtime_ns
    (Path(folder).parent / f".{Path(folder).name}.tmp-killed").mkdir()  # as a killed writer of this folder leaves it
    assert evaluate(spec, data_dir=str(data_dir), out=str(tmp_path / "evals"), generator=gen).folder == folder
    assert len(gen.calls) == calls  # finished cells are reused
    assert Path(folder, "results.parquet").stat().st_mtime_ns == written  # and the results are written once
    wider = EvalSpec(task="gsm8k", banks=(bank,), shots=(2, 4, 8), seeds=3, limit=6, max_tokens=32)
    again = evaluate(wider, data_dir=str(data_dir), out=str(tmp_path / "evals"), generator=gen).folder
    assert len(gen.calls) == calls + 5  # new cells only: s0k8, s1k8, s2k2, s2k4, s2k8
    assert Path(again).parent == Path(folder).parent and again != folder  # the same cells, a results folder of its own
    assert sorted(pd.read_csv(f"{again}/summary.csv")["k"].unique()) == [2, 4, 8]
    assert sorted(pd.read_csv(f"{folder}/summary.csv")["k"].unique()) == [0, 2, 4]  # the first sweep's, unchanged


@pytest.mark.usefixtures("prefect_harness")
def test_eval_skips_k_beyond_the_context_and_refuses_leaks(tmp_path, data_dir):
    bank = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=40)),
                      data_dir=str(data_dir), out=str(tmp_path / "banks"))
    gen = FakeGenerator(gsm8k_solver(), max_model_len=2000)
    folder = evaluate(EvalSpec(task="gsm8k", banks=(bank,), shots=(1, 32), limit=3, max_tokens=100),
                      data_dir=str(data_dir), out=str(tmp_path / "evals"), generator=gen).folder
    text = open(f"{folder}/summary.md").read()
    assert "skipped" in text and "K=32 needs up to" in text and "max_model_len 2000" in text
    leaky = build_bank(BuildSpec(mode="unsupervised", selection=Selection(task="gsm8k", split="test", limit=5)),
                       data_dir=str(data_dir), out=str(tmp_path / "banks"))
    with pytest.raises(EvalError, match="contain gsm8k test problems .*--exclude-contaminated"):
        evaluate(EvalSpec(task="gsm8k", banks=(leaky,), shots=(1,), limit=3), data_dir=str(data_dir),
                 out=str(tmp_path / "evals"), generator=gen)


def test_zero_shot_row_starts_every_bank_line():
    base = {"transfer": False, "seed": 0, "sample": 0, "extracted_flexible": None, "correct_flexible": False,
            "extracted_strict": "1"}
    rows = [base | {"bank": "none", "source": "zero-shot", "k": 0, "item_id": "1", "correct_strict": True},
            base | {"bank": "b1", "source": "reinforced", "k": 4, "item_id": "1", "correct_strict": False},
            base | {"bank": "b2", "source": "ground-truth", "k": 8, "item_id": "1", "correct_strict": True}]
    table = markdown_table(summarize(pd.DataFrame(rows)))
    assert "| b1 | reinforced | 100.0% (100%-100%) | 0.0% (0%-0%) | - |" in table
    assert "| b2 | ground-truth | 100.0% (100%-100%) | - | 100.0% (100%-100%) |" in table
    assert "none" not in table
