"""End to end through the real ``manyshot`` CLI: real vLLM engine, real datasets, real Parquet files."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import verifiers
from flows.runtime.banks import read_bank

pytestmark = [pytest.mark.engine, pytest.mark.timeout(900)]
CLI = [str(Path(sys.executable).parent / "manyshot")]


def manyshot(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = os.environ | {"VLLM_CPU_KVCACHE_SPACE": "1"}
    proc = subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=840)
    if check and proc.returncode != 0:
        pytest.fail(f"manyshot {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc


def last_line(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout.strip().splitlines()[-1]


def test_ground_truth_bank_then_eval_with_embedded_tiny(tmp_path, data_dir):
    bank = last_line(manyshot("bank", "build", "--mode", "ground-truth", "--task", "gsm8k", "--limit", "8",
                              "--out", str(tmp_path / "banks"), cwd=tmp_path))
    assert Path(bank).is_file() and read_bank(bank)[0].num_rows == 8
    listing = manyshot("bank", "list", str(tmp_path / "banks"), cwd=tmp_path).stdout
    assert bank in listing and "shots=8" in listing
    assert "provenance:" in manyshot("bank", "show", bank, cwd=tmp_path).stdout
    proc = manyshot("eval", "--bank", bank, "--task", "gsm8k", "--shots", "0,2", "--limit", "4", "--model",
                    "embedded-tiny", "--max-tokens", "48", "--out", str(tmp_path / "evals"), cwd=tmp_path)
    folder = Path(last_line(proc))
    results = pd.read_parquet(folder / "results.parquet")
    assert len(results) == 4 * 2 and set(results["k"]) == {0, 2}
    assert results["response"].str.len().gt(0).all() and results["model"].str.contains("SmolLM2").all()
    assert (folder / "accuracy.png").stat().st_size > 1000 and "K=2" in (folder / "summary.md").read_text()


def test_reinforced_bank_with_embedded_model(tmp_path, data_dir):
    args = ["bank", "build", "--mode", "reinforced", "--task", "gsm8k", "--limit", "8", "--samples", "4",
            "--rounds", "2", "--max-tokens", "256", "--model", "embedded", "--out", str(tmp_path / "banks")]
    bank = last_line(manyshot(*args, cwd=tmp_path))
    table, meta = read_bank(bank)
    assert table.num_rows > 0, "the 0.5B model solved none of 8 problems in 2 rounds of 4 samples"
    for row in table.to_pylist():
        assert verifiers.verify(row["gold_answer"], row["rationale"], fmt="number").correct
        assert row["model"] and "Qwen2.5" in row["model"] and row["source"] == "reinforced"
    solved = meta["report"]["solved per round"]
    assert meta["report"]["samples"] == 8 * 4 + (8 - solved[0]) * 4 and sum(solved) == table.num_rows
    again = manyshot(*args, cwd=tmp_path)
    assert "bank already built" in again.stdout + again.stderr and last_line(again) == bank


def test_bad_input_gives_a_clear_error(tmp_path, data_dir):
    proc = manyshot("bank", "build", "--mode", "ground-truth", "--task", "math", "--levels", "9",
                    "--out", str(tmp_path), cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "manyshot: error: the selection is empty" in proc.stderr
    proc = manyshot("bank", "show", str(tmp_path / "nope.parquet"), cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "no bank at" in proc.stderr
