"""Many-shot for real: a K >= 100 GSM8K cell and a resolved K=max cell on the embedded model, through the CLI."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from test_e2e_cli import last_line, manyshot

pytestmark = [pytest.mark.engine, pytest.mark.timeout(900)]


def test_k100_and_max_cells_on_the_embedded_model(tmp_path, data_dir):
    bank = last_line(manyshot("bank", "build", "--mode", "ground-truth", "--task", "gsm8k", "--limit", "160",
                              "--out", str(tmp_path / "banks"), cwd=tmp_path))
    proc = manyshot("eval", "--bank", bank, "--task", "gsm8k", "--shots", "100,max", "--limit", "3",
                    "--model", "embedded", "--max-tokens", "16", "--out", str(tmp_path / "evals"), cwd=tmp_path)
    folder = last_line(proc)
    results = pd.read_parquet(f"{folder}/results.parquet")
    hundred, top = results[results.k_label == "100"], results[results.k_label == "max"]
    assert len(hundred) == 3 and (hundred.k == 100).all() and hundred.prompt_tokens.min() > 10_000
    assert len(top) == 3 and top.k.nunique() == 1 and top.k.iloc[0] > 100
    assert (top.prompt_tokens + 16 <= 32768).all() and top.prompt_tokens.min() > hundred.prompt_tokens.max()
    assert results.response.str.len().gt(0).all()
    resolution = json.loads(next((tmp_path / "evals").rglob("*-kmax.json")).read_text())
    assert resolution["k"] == top.k.iloc[0] and resolution["max_model_len"] == 32768
    label = bank.rsplit("/", 1)[-1].removesuffix(".parquet")
    assert f"K=max for {label} seed 0: K={resolution['k']}" in proc.stdout + proc.stderr  # a log line
    summary = open(f"{folder}/summary.md").read()
    assert "| K=100 | K=max |" in summary and "prompt tokens per K" in summary
