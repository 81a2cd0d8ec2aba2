"""Test environment: offline hub, Prefect home in a temp dir, telemetry off, real data via MANYSHOT_DATA_DIR."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_PREFECT_HOME = tempfile.mkdtemp(prefix="manyshot-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("MANYSHOT_DATA_DIR", str((ROOT.parent / "shared" / "data").resolve()))
DATA_DIR = Path(os.environ["MANYSHOT_DATA_DIR"])


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    # 120 s timed out once at a load average of 17 on 2 cores
    with prefect_test_harness(server_startup_timeout=300):
        yield


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "gsm8k" / "test.jsonl").exists():
        pytest.fail(f"real datasets not found under {DATA_DIR}; set MANYSHOT_DATA_DIR")
    return DATA_DIR


def tiny_engine(dtype: str = "auto"):
    """A real vLLM engine with ``embedded-tiny`` (1,024-token context) in ``dtype`` (``"auto"``: the engine's
    bfloat16), for module-scoped fixtures: yields it, then closes it. Skips when the model's packages are not
    installed."""
    from generators.models import EMBEDDED, ModelNotAvailableError, locate_chunks

    try:
        locate_chunks(EMBEDDED["embedded-tiny"])
    except ModelNotAvailableError as e:
        pytest.skip(str(e))
    from generators.vllm_backend import VLLMGenerator

    g = VLLMGenerator("embedded-tiny", max_model_len=1024, seed=0, dtype=dtype)
    yield g
    g.close()


def gsm8k_solver(correct_every: int = 1):
    """A fake-model script that answers GSM8K prompts with the gold answer found in its own lookup."""
    from flows.core.data import load_problems

    answers = {p.question: p.answer for p in load_problems("gsm8k", "train", DATA_DIR)}
    answers |= {p.question: p.answer for p in load_problems("gsm8k", "test", DATA_DIR)}

    def script(prompt, sample, rng):
        gold = answers.get(prompt[-1]["content"])
        if gold is None:
            return "I am not sure."
        if sample % correct_every:
            return f"Let me think. 2 + 2 = 4.\nThe answer is {gold}1"
        return f"Reasoning for sample {sample}.\nThe answer is {gold}"
    return script


def small_spec(mode: str = "reinforced", *, task: str = "gsm8k", limit: int | None = 8, seed: int = 0,
               subjects: tuple[str, ...] = (), levels: tuple[int, ...] = (), chunk_size: int = 4, samples: int = 2,
               rounds=1, **fields):
    """A build spec sized for the scripted fake: 64-token rationales sampled at temperature 0.7 (1.0 in later
    rounds). ``rounds`` is a number of rounds, or a whole :class:`~flows.core.specs.Rounds`; ``fields`` are the
    other :class:`~flows.core.specs.BuildSpec` fields (``few_shot``, ``iterate_from``, ...)."""
    from flows.core.specs import BuildSpec, Rounds, Selection

    if not isinstance(rounds, Rounds):
        rounds = Rounds(samples=samples, temperature=0.7, retry_temperature=1.0, max_tokens=64, rounds=rounds)
    return BuildSpec(mode=mode, selection=Selection(task=task, limit=limit, seed=seed, subjects=subjects, levels=levels),
                     rounds=rounds, chunk_size=chunk_size, **fields)


def bank_content(bank):
    """A bank (path or pyarrow table) as a DataFrame in shot order, without the per-run columns
    (``created_at``, ``run_id``), for comparing two builds of the same configuration."""
    import pyarrow.parquet as pq

    table = bank if hasattr(bank, "to_pandas") else pq.read_table(bank)
    df = table.to_pandas().sort_values("shot_id")
    return df.drop(columns=["created_at", "run_id"]).reset_index(drop=True)


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.fixture
def servers():
    """``make(**kw)`` starts an in-thread fake OpenAI server; every one made is closed after the test."""
    from fake_openai import FakeOpenAI

    made: list = []

    def make(**kw):
        made.append(FakeOpenAI(**kw))
        return made[-1]

    yield make
    for s in made:
        s.close()
