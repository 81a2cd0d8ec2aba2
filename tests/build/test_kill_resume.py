"""A real ``kill -9`` of a ``manyshot bank build`` process, then a rerun that finishes the bank.

The CLI runs as its own process group against a scripted OpenAI-compatible server in this process. The
server answers the first two chunks at once and holds every request of the third chunk, so the build is
killed with two chunk checkpoints on disk and the third in flight. The rerun must regenerate only the
third chunk and write the same bank as an uninterrupted build.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import bank_content
from fake_openai import FakeOpenAI
from flows.build.flow import build_bank
from flows.core.specs import BuildSpec, Rounds, Selection
from flows.core.data import load_problems, select
from generators.openai_backend import OpenAIGenerator

pytestmark = [pytest.mark.server, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
MANYSHOT = ROOT / ".venv" / "bin" / "manyshot"
LIMIT, CHUNK = 12, 4


def solver_server(data_dir: Path, hold: set[str], release: threading.Event) -> FakeOpenAI:
    """Answers every GSM8K question with its gold answer; questions in ``hold`` wait for ``release``."""
    gold = {p.question: p.answer for p in load_problems("gsm8k", "train", data_dir)}

    def hook(body):
        question = body["messages"][-1]["content"]
        if question in hold:
            release.wait(120)
        texts = [f"Step {body.get('seed')}/{i}: work it out.\nThe answer is {gold[question]}"
                 for i in range(body.get("n", 1))]
        choices = [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                   for i, t in enumerate(texts)]
        return 200, {"choices": choices, "usage": {"prompt_tokens": 9, "completion_tokens": 9 * len(texts)}}
    return FakeOpenAI(hook=hook)


def build_cmd(url: str, out: Path) -> list[str]:
    return [str(MANYSHOT), "bank", "build", "--task", "gsm8k", "--mode", "reinforced", "--limit", str(LIMIT),
            "--chunk-size", str(CHUNK), "--samples", "2", "--max-tokens", "64", "--model", "fake-model",
            "--endpoint", url, "--out", str(out)]


def test_kill_9_mid_build_then_rerun_finishes_the_same_bank(tmp_path, data_dir, prefect_harness):
    if not MANYSHOT.exists():
        pytest.fail(f"{MANYSHOT} missing: run scripts/setup.sh")
    questions = [p.question for p in select(load_problems("gsm8k", "train", data_dir), limit=LIMIT, seed=0)]
    release = threading.Event()
    server = solver_server(data_dir, hold=set(questions[2 * CHUNK:]), release=release)
    env = {**os.environ, "MANYSHOT_DATA_DIR": str(data_dir), "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    out = tmp_path / "banks"
    try:
        proc = subprocess.Popen(build_cmd(server.url, out), env=env, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 180
        while len(list(out.glob(".work/*/chunk-*.parquet"))) < 2:
            assert proc.poll() is None, f"build ended early:\n{proc.stdout.read()}"
            assert time.monotonic() < deadline, "no two chunk checkpoints within 180 s"
            time.sleep(0.2)
        while len(server.gen_requests()) < LIMIT:  # the third chunk is in flight, held by the server
            assert time.monotonic() < deadline, "third chunk never reached the server"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        assert proc.returncode == -signal.SIGKILL
        assert not list(out.glob("*.parquet")), "a killed build must not publish a bank"
        assert len(list(out.glob(".work/*/chunk-*.parquet"))) == 2
        release.set()

        before = len(server.gen_requests())
        rerun = subprocess.run(build_cmd(server.url, out), env=env, capture_output=True, text=True, timeout=240)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        resumed = Path(rerun.stdout.strip().splitlines()[-1])
        assert resumed.parent == out and resumed.exists()
        assert len(server.gen_requests()) - before == CHUNK, "only the killed chunk is regenerated"

        reference_gen = OpenAIGenerator(server.url, model="fake-model")
        spec = BuildSpec(mode="reinforced", model="fake-model", chunk_size=CHUNK,
                         selection=Selection(task="gsm8k", limit=LIMIT),
                         rounds=Rounds(samples=2, temperature=0.7, retry_temperature=1.0, max_tokens=64, rounds=1))
        reference = build_bank(spec, data_dir=str(data_dir), out=str(tmp_path / "reference"), generator=reference_gen)
        assert Path(reference).name == resumed.name
        got, want = bank_content(resumed), bank_content(Path(reference))
        assert len(got) == LIMIT
        differ = [c for c in want.columns if not got[c].equals(want[c])]
        assert not differ, {c: (got[c].iloc[0], want[c].iloc[0]) for c in differ}
        assert set(got["dataset"]) == {f"gsm8k:{data_dir}"}  # MANYSHOT_DATA_DIR, recorded as such
    finally:
        release.set()
        server.close()
