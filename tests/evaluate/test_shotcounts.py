"""Shot-count ladders with ``max``: parsing, resolution against the context, and the eval flow with it."""
import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import gsm8k_solver
from flows.build.flow import build_bank
from flows.core.specs import BuildSpec, EvalError, EvalSpec, Selection, ShotCountError, MAX, parse_shots
from flows.core.problem import Problem
from flows.evaluate.flow import evaluate
from flows.evaluate.prompts import many_shot_prompt
from flows.core.schema import Shot
from flows.evaluate.metrics import markdown_table, prompt_tokens_table, summarize
from flows.evaluate.shotcounts import resolve_max
from generators.fake import FakeGenerator


def test_ladders_parse_sorted_unique_with_max_last():
    assert parse_shots("0,4,16,64,max") == (0, 4, 16, 64, MAX)
    assert parse_shots("max, 16 ,4,4") == (4, 16, MAX)
    assert parse_shots([0, "MAX", 8]) == (0, 8, MAX)
    for bad in ("4,lots", "-1", "", "1.5"):
        with pytest.raises(ShotCountError):
            parse_shots(bad)


def problems(lengths):
    return [Problem(id=f"p{i}", task="gsm8k", split="test", question=" ".join(["w"] * n), solution=None, answer="1")
            for i, n in enumerate(lengths)]


def test_max_is_the_largest_k_that_fits_every_item():
    shots = [Shot(f"s{i}", "a b c", "d e f g") for i in range(50)]  # each shot: 2 turns of 3+4 and 4+4 words
    items = problems([3, 30, 10])
    gen = FakeGenerator(max_model_len=400)
    res = resolve_max(gen, "gsm8k", shots, items, max_tokens=100)
    fits = lambda k: max(gen.count_tokens(many_shot_prompt("gsm8k", shots[:k], p.question)) for p in items) <= 300
    assert fits(res.k) and not fits(res.k + 1) and 0 < res.k < 50
    assert res.prompt_tokens <= 300 and f"K={res.k + 1} would exceed" in res.reason
    everything = resolve_max(FakeGenerator(max_model_len=100_000), "gsm8k", shots, items, max_tokens=100)
    assert everything.k == 50 and "all 50 usable shots fit" in everything.reason
    nothing = resolve_max(FakeGenerator(max_model_len=120), "gsm8k", shots, items, max_tokens=100)
    assert nothing.k == 0


def test_summary_labels_max_cells_with_their_k_and_prompt_tokens():
    base = {"bank": "b", "source": "reinforced", "transfer": False, "sample": 0, "extracted_flexible": None,
            "correct_flexible": False, "extracted_strict": "1"}
    rows = [base | {"k": 4, "k_label": "4", "seed": 0, "item_id": "1", "correct_strict": True, "prompt_tokens": 100},
            base | {"k": 37, "k_label": "max", "seed": 0, "item_id": "1", "correct_strict": False, "prompt_tokens": 900},
            base | {"k": 35, "k_label": "max", "seed": 1, "item_id": "1", "correct_strict": True, "prompt_tokens": 880}]
    summary = summarize(pd.DataFrame(rows))
    top = summary[(summary.metric == "strict") & (summary.k_label == "max")].iloc[0]
    assert (top.k, top.k_min, top.k_max, top.accuracy, top.prompt_tokens) == (36, 35, 37, 0.5, 890)
    table = markdown_table(summary)
    assert table.splitlines()[0] == "| bank | source | K=4 | K=max |"
    assert "| 100.0% (100%-100%) | 50.0% (50%-50%) K=35-37 |" in table
    assert "| b | 100 (100) | 890 (900) |" in prompt_tokens_table(summary)


@pytest.mark.usefixtures("prefect_harness")
def test_eval_resolves_max_per_seed_stores_it_and_reuses_it(tmp_path, data_dir):
    bank = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=60)),
                      data_dir=str(data_dir), out=str(tmp_path / "banks"))
    gen = FakeGenerator(gsm8k_solver(), max_model_len=3000)
    spec = EvalSpec(task="gsm8k", banks=(bank,), shots=(0, 2, MAX), seeds=2, limit=4, max_tokens=64)
    folder = evaluate(spec, data_dir=str(data_dir), out=str(tmp_path / "evals"), generator=gen).folder
    results = pq.read_table(f"{folder}/results.parquet").to_pandas()
    maxed = results[results.k_label == MAX]
    assert set(maxed.seed) == {0, 1} and (maxed.k > 2).all() and (maxed.k < 60).all()
    assert (maxed.prompt_tokens + 64 <= 3000).all()
    saved = [json.loads(p.read_text()) for p in sorted((tmp_path / "evals").rglob("*-kmax.json"))]
    assert [s["k"] for s in saved] == [maxed[maxed.seed == s].k.iloc[0] for s in (0, 1)]
    text = open(f"{folder}/summary.md").read()
    assert "K=max" in text and "prompt tokens per K" in text
    calls = len(gen.calls)
    unloaded = evaluate(spec, data_dir=str(data_dir), out=str(tmp_path / "evals"), generator=None).folder
    assert unloaded == folder and len(gen.calls) == calls  # resolutions and cells reused: no model needed
    with pytest.raises(EvalError, match="--shots"):
        evaluate(EvalSpec(task="gsm8k", banks=(bank,), shots=("most",), limit=4), data_dir=str(data_dir),
                 out=str(tmp_path / "evals"), generator=gen)
