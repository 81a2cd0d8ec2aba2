"""Every ablation spec shipped in configs/ loads and turns into valid bank builds and evals (no model is run)."""
from __future__ import annotations

from pathlib import Path

import pytest

from flows.ablate import bank_spec, eval_entry, load_spec
from flows.config import eval_spec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SPECS = sorted(p for p in CONFIGS.glob("*.toml") if "[[evals]]" in p.read_text())


def test_the_shipped_specs_are_found():
    assert {p.name for p in SPECS} >= {"paper-gsm8k.toml", "paper-math.toml", "paper-bbh.toml", "gpu-gsm8k.toml",
                                       "gpu-math.toml"}


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_a_shipped_spec_builds_its_banks_and_evals(path):
    spec = load_spec(path)
    model = spec.get("model", "embedded")
    built = {}
    for entry in spec["banks"]:
        build = bank_spec(entry, model, built)
        assert build.model == model and build.mode == entry["mode"]
        built[entry["name"]] = f"runs/banks/{entry['name']}.parquet"
    for i, entry in enumerate(spec["evals"], start=1):
        banks = tuple(built[n] for n in entry.get("banks", list(built)))
        evaluation = eval_spec(eval_entry(spec, entry, built, model), f"{path}: eval {i}")
        assert evaluation.banks == banks and evaluation.limit == entry.get("limit", spec.get("limit"))
