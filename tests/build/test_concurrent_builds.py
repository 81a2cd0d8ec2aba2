"""Three builds of the same bank started together, as separate processes, share the work.

Two ``manyshot bank build`` processes (the CLI's entry point, ``python -m flows.cli``) and one sharded build
(``build_bank(..., submit=True)`` in ``python -c``) build the same reinforced GSM8K bank against one scripted
OpenAI-compatible server in this process (one endpoint per process, so the test knows who asked). The
server holds every request until every chunk has been asked for and every process has either asked for a
chunk or said it is waiting for one, so the three processes are inside the chunk loop at the same time.
Each chunk's requests must reach the server exactly once, and all three must return the same bank, written
once, equal to a bank built alone.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import bank_content
from fake_openai import FakeOpenAI
from flows.build.flow import build_bank
from flows.core.specs import BuildSpec, Rounds, Selection
from flows.core.data import load_problems, select
from generators.openai_backend import OpenAIGenerator

pytestmark = [pytest.mark.server, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parents[2]
LIMIT, CHUNK, SAMPLES = 12, 4, 2
FALLBACK_S = 120  # release the held requests after this long even if the processes never all met (fails)

SHARDED = """
import sys
from flows.build.flow import build_bank
from flows.core.specs import BuildSpec, Rounds, Selection
from generators import GeneratorConfig
url, data_dir, out, limit, chunk, samples = sys.argv[1:]
spec = BuildSpec(mode="reinforced", model="fake-model", chunk_size=int(chunk),
                 selection=Selection(task="gsm8k", limit=int(limit)),
                 rounds=Rounds(samples=int(samples), temperature=0.7, retry_temperature=1.0, max_tokens=64, rounds=1))
print(build_bank(spec, data_dir=data_dir, out=out, generator=GeneratorConfig("fake-model", endpoints=(url,)), submit=True))
"""


class HoldingSolver:
    """Answers each GSM8K question with its gold answer, holding every request until ``release`` is set;
    ``servers[n]`` is process n's endpoint."""

    def __init__(self, data_dir: Path, n: int):
        self.gold = {p.question: p.answer for p in load_problems("gsm8k", "train", data_dir)}
        self.release = threading.Event()
        self.servers = [FakeOpenAI(hook=self.hook) for _ in range(n)]

    def hook(self, body):
        question = body["messages"][-1]["content"]
        self.release.wait(FALLBACK_S + 60)
        texts = [f"Step {body.get('seed')}/{i}: work it out.\nThe answer is {self.gold[question]}"
                 for i in range(body.get("n", 1))]
        choices = [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                   for i, t in enumerate(texts)]
        return 200, {"choices": choices, "usage": {"prompt_tokens": 9, "completion_tokens": 9 * len(texts)}}

    def asked(self, n: int | None = None) -> Counter:
        servers = self.servers if n is None else [self.servers[n]]
        return Counter(b["messages"][-1]["content"] for s in servers for b in s.gen_requests())


def cli_build(url: str, data_dir: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "flows.cli", "bank", "build", "--task", "gsm8k", "--mode", "reinforced",
            "--limit", str(LIMIT), "--chunk-size", str(CHUNK), "--samples", str(SAMPLES), "--max-tokens", "64",
            "--model", "fake-model", "--endpoint", url, "--data-dir", str(data_dir), "--out", str(out)]


def sharded_build(url: str, data_dir: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", SHARDED, url, str(data_dir), str(out), str(LIMIT), str(CHUNK), str(SAMPLES)]


def log_text(tmp_path: Path, n: int) -> str:
    return "".join((tmp_path / f"{kind}{n}.txt").read_text() for kind in ("out", "err"))


def test_three_concurrent_builds_generate_each_chunk_once(tmp_path, data_dir, prefect_harness):
    questions = [p.question for p in select(load_problems("gsm8k", "train", data_dir), limit=LIMIT, seed=0)]
    chunk_of = {q: i // CHUNK for i, q in enumerate(questions)}
    solver = HoldingSolver(data_dir, 3)
    urls, out = [s.url for s in solver.servers], tmp_path / "banks"
    commands = [cli_build(urls[0], data_dir, out), cli_build(urls[1], data_dir, out),
                sharded_build(urls[2], data_dir, out)]
    procs = []
    try:
        for n, cmd in enumerate(commands):
            env = {**os.environ, "MANYSHOT_DATA_DIR": str(data_dir), "PREFECT_HOME": str(tmp_path / f"prefect{n}"),
                   "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}  # as the CLI sets it
            env.pop("PREFECT_API_URL", None)
            logs = (tmp_path / f"out{n}.txt").open("w"), (tmp_path / f"err{n}.txt").open("w")
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=logs[0], stderr=logs[1]))
            for log in logs:
                log.close()
        first_request, met = None, False
        while not solver.release.is_set():
            asked = solver.asked()
            if asked and first_request is None:
                first_request = time.monotonic()
            in_loop = [bool(solver.asked(n)) or "waiting to reuse it" in log_text(tmp_path, n) for n in range(3)]
            met = all(in_loop) and {chunk_of[q] for q in asked} == set(range(LIMIT // CHUNK))
            if met or (first_request is not None and time.monotonic() - first_request > FALLBACK_S):
                solver.release.set()
            ended = [n for n, p in enumerate(procs) if p.poll() is not None]
            assert not ended or solver.release.is_set(), \
                f"build {ended[0]} ended early:\n{(tmp_path / f'err{ended[0]}.txt').read_text()[-3000:]}"
            time.sleep(0.1)
        for p in procs:
            p.wait(240)
        outputs = [((tmp_path / f"out{n}.txt").read_text(), (tmp_path / f"err{n}.txt").read_text())
                   for n in range(len(procs))]
        for p, (stdout, stderr) in zip(procs, outputs):
            assert p.returncode == 0, stdout + stderr
        made = [sorted({chunk_of[q] for q in solver.asked(n)}) for n in range(3)]
        asked = solver.asked()
        assert asked == Counter(questions), (f"{sum(asked.values())} generation requests for {LIMIT} problems; "
                                             f"per chunk: {Counter(chunk_of[q] for q in asked.elements())}; "
                                             f"chunks asked for by each process: {made}")
        assert met, f"the three processes were never in the chunk loop together (chunks per process: {made})"

        paths = {stdout.strip().splitlines()[-1] for stdout, _ in outputs}
        assert len(paths) == 1, paths
        path = Path(paths.pop())
        assert path.parent == out and [p.name for p in out.glob("*.parquet")] == [path.name]
        texts = [stdout + stderr for stdout, stderr in outputs]
        assert sum(f"bank: {path}" in t for t in texts) == 1, "exactly one process writes the bank"
        assert sum(f"bank already built by a concurrent run: {path}" in t for t in texts) == 2
        assert not list(out.glob(".work/*/.*.lock")), "every lock file is removed by its holder"

        spec = BuildSpec(mode="reinforced", model="fake-model", chunk_size=CHUNK,
                         selection=Selection(task="gsm8k", limit=LIMIT),
                         rounds=Rounds(samples=SAMPLES, temperature=0.7, retry_temperature=1.0, max_tokens=64,
                                       rounds=1))
        reference = build_bank(spec, data_dir=str(data_dir), out=str(tmp_path / "reference"),
                               generator=OpenAIGenerator(urls[0], model="fake-model"))
        assert Path(reference).name == path.name
        got, want = bank_content(path), bank_content(Path(reference))
        assert len(got) == LIMIT
        assert not [c for c in want.columns if not got[c].equals(want[c])]
    finally:
        solver.release.set()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(30)
        for server in solver.servers:
            server.close()
