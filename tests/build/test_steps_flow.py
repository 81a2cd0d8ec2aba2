"""Step checks in bank building: the steps_* columns, the report, --require-valid-steps, and older banks."""
import functools

import pyarrow.parquet as pq
import pytest

import flows.build.flow as build
from flows.runtime.banks import ChunkStore, read_bank
from flows.build.flow import build_bank
from flows.core.specs import BuildError, BuildSpec, Selection
from conftest import small_spec
from flows.cli import main
from flows.core.data import load_problems
from flows.build.bank_report import step_summary
from flows.build.sources import key_config
from flows.core.schema import ADDED_SHOT_COLUMNS
from generators.fake import FakeGenerator

pytestmark = pytest.mark.usefixtures("prefect_harness")


spec = functools.partial(small_spec, limit=4)  # in one chunk of 4, 2 samples


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(build, "run_chunk", build.run_chunk.with_options(retry_delay_seconds=0))


@pytest.fixture(scope="module")
def gold(data_dir):
    return {p.question: p.answer for p in load_problems("gsm8k", "train", data_dir)}


def solver(gold, bad_sample=lambda sample, calls: sample == 0):
    """Always the right final answer; the rationale's step is wrong where ``bad_sample(sample, calls)``."""
    gen = FakeGenerator()

    def script(prompt, sample, rng):
        step = "2 + 2 = 5" if bad_sample(sample, len(gen.calls)) else "2 + 2 = 4"
        return f"First, {step} apples.\nThe answer is {gold[prompt[-1]['content']]}"
    gen.script = script
    return gen


def test_columns_report_and_require_valid_steps(tmp_path, data_dir, gold, capsys):
    plain = build_bank(spec(), data_dir=str(data_dir), out=str(tmp_path), generator=solver(gold))
    table, meta = read_bank(plain)
    rows = table.to_pylist()
    assert len(rows) == 4 and all("2 + 2 = 5" in r["rationale"] for r in rows)
    assert [(r["steps_checked"], r["steps_wrong"]) for r in rows] == [(1, 1)] * 4
    report = meta["report"]
    assert report["shots with a wrong step"] == "4 of 4 (100.0%)" and report["steps checked"] == 4
    assert len(report["wrong-step examples"]) == 3
    assert "chars 7-16 '2 + 2 = 5' (wrong: 2 + 2 is 4)" in report["wrong-step examples"][0]
    assert report["correct rationales dropped for a wrong step"] == 0

    strict = build_bank(spec(require_valid_steps=True), data_dir=str(data_dir), out=str(tmp_path),
                        generator=solver(gold))
    assert strict != plain  # the flag is part of the key
    table, meta = read_bank(strict)
    rows = table.to_pylist()
    assert len(rows) == 4 and all("2 + 2 = 4" in r["rationale"] for r in rows)
    assert [(r["steps_checked"], r["steps_wrong"]) for r in rows] == [(1, 0)] * 4
    assert meta["report"]["shots with a wrong step"] == "0 of 4 (0.0%)"
    assert meta["report"]["correct rationales dropped for a wrong step"] == 4
    assert meta["config"]["require_valid_steps"] is True

    assert main(["bank", "show", plain]) == 0
    out = capsys.readouterr().out
    assert "step check: 4 of 4 (100.0%) shots with a wrong step, 4 steps checked (recorded)" in out
    assert "'2 + 2 = 5' (wrong: 2 + 2 is 4)" in out


def test_key_changes_only_when_the_flag_is_set():
    base = key_config(spec())
    assert "require_valid_steps" not in base
    assert key_config(spec(require_valid_steps=True)) == base | {"require_valid_steps": True}
    assert key_config(spec(mode="ground-truth")) == key_config(BuildSpec(
        mode="ground-truth", selection=Selection(task="gsm8k", limit=4), chunk_size=4))


def test_wrong_step_rationales_count_as_unsolved_and_are_retried(tmp_path, data_dir, gold):
    gen = solver(gold, bad_sample=lambda sample, calls: calls == 1)  # round 1: every sample has a wrong step
    path = build_bank(spec(rounds=2, require_valid_steps=True), data_dir=str(data_dir), out=str(tmp_path),
                      generator=gen)
    table, meta = read_bank(path)
    assert meta["report"]["solved per round"] == [0, 4]
    assert set(table.column("round").to_pylist()) == {1} and set(table.column("steps_wrong").to_pylist()) == {0}
    assert len(gen.calls) == 2 and gen.calls[1][1].temperature == 1.0


def test_ground_truth_shots_record_counts_and_reject_the_flag(tmp_path, data_dir):
    path = build_bank(spec(mode="ground-truth", limit=8), data_dir=str(data_dir), out=str(tmp_path))
    table, meta = read_bank(path)
    assert all(n > 0 for n in table.column("steps_checked").to_pylist())
    assert "shots with a wrong step" in meta["report"]
    with pytest.raises(BuildError, match="require_valid_steps applies to reinforced builds"):
        build_bank(spec(mode="ground-truth", require_valid_steps=True), data_dir=str(data_dir), out=str(tmp_path))


def test_banks_and_checkpoints_without_the_new_columns_still_read(tmp_path, data_dir):
    path = build_bank(spec(mode="ground-truth"), data_dir=str(data_dir), out=str(tmp_path / "new"))
    old = pq.read_table(path).drop_columns(list(ADDED_SHOT_COLUMNS))
    pq.write_table(old, tmp_path / "old.parquet")
    table, meta = read_bank(tmp_path / "old.parquet")
    assert table.num_rows == 4 and table.column("steps_wrong").null_count == 4
    assert meta["config"]["mode"] == "ground-truth"
    recomputed = step_summary(table)  # an older bank: counts computed from its rationales
    assert recomputed["step counts"] == "recomputed" and recomputed["steps checked"] > 0
    assert step_summary(read_bank(path)[0]) == {**recomputed, "step counts": "recorded"}
    store = ChunkStore(tmp_path, "work")
    store.dir.mkdir(parents=True)
    pq.write_table(old, store.path("c0"))
    assert store.get("c0").column("steps_checked").null_count == 4
