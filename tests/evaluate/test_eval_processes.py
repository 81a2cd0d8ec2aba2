"""Real ``manyshot eval`` / ``manyshot ablate`` processes: two at once share the cells; SIGINT, SIGTERM and
``kill -9`` keep every finished cell, and a rerun computes only the missing ones.

Every process talks to one scripted OpenAI-compatible server in this process (``--endpoint``), which answers
each GSM8K test question with its gold answer for even request seeds and a wrong one for odd seeds, after a
per-request latency. A request is traced back to its cell through the prompt hash that the results record.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fake_openai import FakeOpenAI
from flows.build.flow import build_bank
from flows.core.specs import BuildSpec, EvalSpec, Selection
from flows.core.data import load_problems
from flows.evaluate.flow import evaluate
from generators import prompt_hash
from generators.openai_backend import OpenAIGenerator

# a hang guard: the signal test took 276-609 s on a loaded 2-core machine, Prefect's harness start included
pytestmark = [pytest.mark.server, pytest.mark.timeout(1200), pytest.mark.usefixtures("prefect_harness")]

ROOT = Path(__file__).resolve().parents[2]
LIMIT, SEEDS, SHOTS = 4, 3, "0,2,4"
CELLS = 1 + SEEDS * 2  # K=0 once, then K=2 and K=4 per seed
KEPT = re.compile(r"interrupted: (?:ablation .*?: )?(\d+) of (\d+) cells finished and kept in (\S+); "
                  r"run the same command again to compute the other (\d+)")
COLUMNS = ["response", "extracted_strict", "correct_strict", "extracted_flexible", "correct_flexible",
           "prompt_hash", "prompt_tokens"]


class Solver:
    """The scripted server; ``hold`` (an Event) keeps every generation request waiting until it is set."""

    def __init__(self, data_dir: Path, latency: float, hold: threading.Event | None = None):
        self.gold = {p.question: p.answer for p in load_problems("gsm8k", "test", data_dir)}
        self.latency, self.hold = latency, hold
        self.server = FakeOpenAI(model="fake-model", hook=self.hook)

    def hook(self, body):
        if "messages" not in body:  # a /v1/completions request: the CLI runs in chat mode
            return 400, {"error": {"message": f"the scripted solver answers chat requests only, not {sorted(body)}"}}
        if self.hold is not None:
            self.hold.wait(150)
        time.sleep(self.latency)
        question = body["messages"][-1]["content"]
        answer = self.gold[question] if body.get("seed", 0) % 2 == 0 else "0"
        text = f"Thinking about seed {body.get('seed')}.\nThe answer is {answer}"
        return 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                  "finish_reason": "stop"}], "usage": {"prompt_tokens": 9, "completion_tokens": 9}}

    def chats(self) -> list[dict]:
        """The generation requests, in arrival order; all chat requests (the fake server records only
        complete ones, so a process killed mid-send leaves none without ``messages``)."""
        paths = [p for p, _, _ in self.server.requests if p.endswith("completions")]
        assert set(paths) <= {"/v1/chat/completions"}, f"the CLI runs in chat mode, yet it asked {set(paths)}"
        return self.server.gen_requests()

    def asked(self, since: int = 0) -> list[str]:
        """Prompt hashes of the generation requests, in arrival order, from request ``since`` on."""
        return [prompt_hash(b["messages"]) for b in self.chats()[since:]]

    def prefixes(self) -> set[str]:
        """One per cell: the shared part of the prompt (everything but the question)."""
        return {prompt_hash(b["messages"][:-1]) for b in self.chats()}


@pytest.fixture
def bank(tmp_path, data_dir) -> str:
    return build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=12)),
                      data_dir=str(data_dir), out=str(tmp_path / "banks"))


def eval_cmd(url: str, bank: str, out: Path, shots: str = SHOTS) -> list[str]:
    return [sys.executable, "-m", "flows.cli", "eval", "--task", "gsm8k", "--bank", bank, "--shots", shots,
            "--seeds", str(SEEDS), "--limit", str(LIMIT), "--max-tokens", "64", "--model", "fake-model",
            "--endpoint", url, "--out", str(out)]


def start(cmd: list[str], tmp_path: Path, name: str, data_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "MANYSHOT_DATA_DIR": str(data_dir), "PREFECT_HOME": str(tmp_path / f"prefect-{name}")}
    env.pop("PREFECT_API_URL", None)
    logs = [(tmp_path / f"{name}.{kind}").open("w") for kind in ("out", "err")]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=logs[0], stderr=logs[1], start_new_session=True)
    for log in logs:
        log.close()
    return proc


def output(tmp_path: Path, name: str) -> tuple[str, str]:
    return (tmp_path / f"{name}.out").read_text(), (tmp_path / f"{name}.err").read_text()


def run_to_end(cmd: list[str], tmp_path: Path, name: str, data_dir: Path) -> str:
    """Run ``cmd`` to the end; it must succeed. Returns its stdout."""
    proc = start(cmd, tmp_path, name, data_dir)
    proc.wait(300)
    stdout, stderr = output(tmp_path, name)
    assert proc.returncode == 0, stdout[-2000:] + stderr[-3000:]
    return stdout


def cell_files(root: Path) -> dict[str, Path]:
    return {p.name: p for p in root.glob("*/cells/*.parquet")}


def wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the process ended before {what} (exit {proc.returncode})"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.05)


def cell_of(results_path: Path) -> dict[str, tuple]:
    """prompt hash -> (bank, seed, k) of every row of a results file."""
    df = pq.read_table(results_path).to_pandas()
    return {h: (b, s, k) for h, b, s, k in zip(df.prompt_hash, df.bank, df.seed, df.k)}


def content(results_path: Path):
    df = pq.read_table(results_path).to_pandas()
    return df.sort_values(["bank", "seed", "k", "item_id"]).reset_index(drop=True)[["bank", "seed", "k", "item_id"]
                                                                                    + COLUMNS]


def test_two_concurrent_evals_compute_each_cell_once(tmp_path, data_dir, bank):
    hold = threading.Event()
    solver = Solver(data_dir, latency=0.3, hold=hold)
    out = tmp_path / "evals"
    shots = SHOTS + ",max"  # a K=max cell per seed: its resolution file is shared too
    procs: list[subprocess.Popen] = []
    try:
        procs += [start(eval_cmd(solver.server.url, bank, out, shots), tmp_path, f"p{n}", data_dir) for n in range(2)]
        first = None
        while not hold.is_set():  # release once two cells are in flight at once: both processes are in the loop
            assert all(p.poll() is None for p in procs), [output(tmp_path, f"p{n}")[1][-2000:] for n in range(2)]
            if solver.server.gen_requests() and first is None:
                first = time.monotonic()
            if len(solver.prefixes()) >= 2 or (first is not None and time.monotonic() - first > 90):
                hold.set()
            time.sleep(0.05)
        overlapped = len(solver.prefixes()) >= 2
        for p in procs:
            p.wait(300)
        outs = [output(tmp_path, f"p{n}") for n in range(2)]
        for p, (stdout, stderr) in zip(procs, outs):
            assert p.returncode == 0, stdout[-2000:] + stderr[-3000:]
        assert overlapped, "the two processes never had cells in flight at the same time"
        folders = {stdout.strip().splitlines()[-1] for stdout, _ in outs}
        assert len(folders) == 1, folders
        folder = Path(folders.pop().removeprefix("results: "))
        results = folder / "results.parquet"
        rows = pq.read_table(results).num_rows
        assert rows == (CELLS + SEEDS) * LIMIT  # every cell ran, none skipped (all 12 shots fit: K=max is 12)

        asked = Counter(solver.asked())
        assert set(asked.values()) == {1}, [h for h, n in asked.items() if n > 1]  # no prompt asked twice
        assert set(asked) == set(cell_of(results)) and sum(asked.values()) == rows

        made = [len(re.findall(r"cell \d+/\d+ \S+: accuracy", stdout + stderr)) for stdout, stderr in outs]
        assert sum(made) == CELLS + SEEDS and min(made) > 0, made  # the work was shared, each cell made once
        assert any("another process" in stdout + stderr for stdout, stderr in outs)
        shared = folder.parents[1]  # <eval>/runs/<run>: the cells are the eval folder's
        resolutions = sorted(p.name for p in (shared / "cells").glob("*-kmax.json"))
        assert len(resolutions) == SEEDS
        resolved = Counter(m for stdout, stderr in outs for m in re.findall(r"K=max for \S+ seed (\d+): K=12 ", stderr))
        assert resolved == Counter({str(seed): 1 for seed in range(SEEDS)})  # each resolved by one process only
        assert not list(shared.rglob(".*.lock")) and not list(shared.rglob("*.tmp*"))
    finally:
        hold.set()
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(30)
        solver.server.close()


def stop_after_next_cell(tmp_path: Path, data_dir: Path, cmd: list[str], name: str, out: Path, signum: int,
                         solver: Solver) -> tuple[subprocess.Popen, set[str]]:
    """Run ``cmd`` until one more cell file is on disk and the next cell's requests reached the server, then
    send ``signum``: SIGINT to the process group (what Ctrl-C in a terminal does), SIGTERM to the process,
    SIGKILL to the group, and wait until the server has read every request the process had sent (its
    connections are closed). Returns the stopped process and the cell files present before it started."""
    before = set(cell_files(out))
    sent = len(solver.server.gen_requests())
    proc = start(cmd, tmp_path, name, data_dir)
    wait_for(lambda: len(cell_files(out)) > len(before), proc, "a new cell file")
    done = len(cell_files(out)) - len(before)
    wait_for(lambda: len(solver.server.gen_requests()) > sent + done * LIMIT, proc, "the next cell's requests")
    if signum == signal.SIGTERM:
        os.kill(proc.pid, signum)
    else:
        os.killpg(proc.pid, signum)
    proc.wait(120)
    solver.server.wait_idle()
    return proc, before


def check_kept(tmp_path: Path, name: str, out: Path, exit_code: int) -> None:
    """The message names exactly the cell files on disk; every one is a complete cell; no traceback."""
    _, stderr = output(tmp_path, name)
    assert "Traceback" not in stderr, stderr[-3000:]
    kept = KEPT.search(stderr)
    assert kept, stderr[-3000:]
    finished, total, folder, other = int(kept[1]), int(kept[2]), Path(kept[3]), int(kept[4])
    files = cell_files(out)
    assert (finished, total, other) == (len(files), CELLS, CELLS - len(files))
    assert folder == next(iter(files.values())).parent
    assert all(pq.read_table(f).num_rows == LIMIT for f in files.values())
    assert not list(folder.glob("*.tmp*")), "SIGINT and SIGTERM remove their temporary files"
    assert exit_code in (130, 143)


def test_sigint_sigterm_and_kill_9_keep_finished_cells_and_rerun_computes_the_rest(tmp_path, data_dir, bank):
    solver = Solver(data_dir, latency=0.4)
    out = tmp_path / "evals"
    cmd = eval_cmd(solver.server.url, bank, out)
    try:
        runs = []
        for name, signum, code in (("int", signal.SIGINT, 130), ("term", signal.SIGTERM, 143),
                                   ("kill", signal.SIGKILL, -signal.SIGKILL)):
            sent = len(solver.server.gen_requests())
            proc, before = stop_after_next_cell(tmp_path, data_dir, cmd, name, out, signum, solver)
            assert proc.returncode == code, output(tmp_path, name)[1][-3000:]
            if signum != signal.SIGKILL:
                check_kept(tmp_path, name, out, proc.returncode)
            runs.append((before, solver.asked(sent)))
        files = cell_files(out)
        assert len(files) < CELLS, "the runs were stopped before the last cell"
        cells_dir = next(iter(files.values())).parent
        assert all(pq.read_table(f).num_rows == LIMIT for f in files.values())  # kill -9 left no partial cell
        missing = sorted({f"{Path(bank).stem}-s{s}-k{k}.parquet" for s in range(SEEDS) for k in (2, 4)}
                         - set(files))
        leftover = cells_dir / f".{missing[0]}.a1b2c3d4.tmp"  # what a writer killed mid-write leaves
        leftover.write_bytes(b"PAR1 half a file")

        sent = len(solver.server.gen_requests())
        stdout = run_to_end(cmd, tmp_path, "rerun", data_dir)
        folder = Path(stdout.strip().splitlines()[-1].removeprefix("results: "))
        cells = cell_of(folder / "results.parquet")
        name = {cell: f"{b}-s{s}-k{k}.parquet" for cell, (b, s, k) in cells.items()}
        asked = Counter(name[h] for h in solver.asked(sent))
        assert asked == Counter({m: LIMIT for m in missing}), "the rerun asks for the missing cells only, once"
        for before, requested in runs:  # no run asked for a cell that was on disk when it started
            assert not {name[h] for h in requested} & before
        assert not leftover.exists() and len(cell_files(out)) == CELLS

        reference = evaluate(EvalSpec(task="gsm8k", banks=(bank,), shots=(0, 2, 4), seeds=SEEDS, limit=LIMIT,
                                      model="fake-model", max_tokens=64), data_dir=str(data_dir),
                             out=str(tmp_path / "reference"), generator=OpenAIGenerator(solver.server.url,
                                                                                        model="fake-model")).folder
        got, want = content(folder / "results.parquet"), content(Path(reference) / "results.parquet")
        assert len(got) == CELLS * LIMIT and got.equals(want)
        assert 0 < got.correct_strict.sum() < len(got)  # the comparison covers right and wrong answers
    finally:
        solver.server.close()


ABLATION = """
model = "fake-model"
shots = [0, 2, 4]
seeds = {seeds}
limit = {limit}
max_tokens = 64

[[banks]]
name = "gt"
mode = "ground-truth"
task = "gsm8k"
limit = 12

[[evals]]
task = "gsm8k"
"""


def test_interrupted_ablation_keeps_its_cells_and_rerun_finishes(tmp_path, data_dir):
    solver = Solver(data_dir, latency=0.4)
    spec = tmp_path / "grid.toml"
    spec.write_text(ABLATION.format(seeds=SEEDS, limit=LIMIT))
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "flows.cli", "ablate", str(spec), "--out", str(runs), "--endpoint", solver.server.url]
    try:
        proc, _ = stop_after_next_cell(tmp_path, data_dir, cmd, "ablate", runs / "evals", signal.SIGINT, solver)
        assert proc.returncode == 130
        check_kept(tmp_path, "ablate", runs / "evals", proc.returncode)
        assert f"interrupted: ablation {spec}, eval 1 of 1 on gsm8k: " in output(tmp_path, "ablate")[1]
        kept = set(cell_files(runs / "evals"))

        sent = len(solver.server.gen_requests())
        run_to_end(cmd, tmp_path, "rerun", data_dir)
        assert (runs / "ablation-grid" / "summary.md").exists()
        results = next(runs.glob("evals/*/runs/*/results.parquet"))
        name = {h: f"{b}-s{s}-k{k}.parquet" for h, (b, s, k) in cell_of(results).items()}
        asked = Counter(name[h] for h in solver.asked(sent))
        assert set(asked) == set(cell_files(runs / "evals")) - kept and set(asked.values()) == {LIMIT}
    finally:
        solver.server.close()


def test_sigint_stops_a_sweep_running_one_cell_per_endpoint(tmp_path, data_dir, bank, monkeypatch):
    """With two endpoints two cells are in flight; Ctrl-C finishes them and stops the process with the exact
    kept-cells message, no traceback; the rerun computes the rest, and the results are a one-endpoint run's."""
    monkeypatch.setenv("MANYSHOT_ROUTE_PREFIX_CHARS", "256")  # pin these short prompts: each cell on one server
    solvers = [Solver(data_dir, latency=1.0) for _ in range(2)]
    out = tmp_path / "evals"
    cmd = eval_cmd(solvers[0].server.url, bank, out) + ["--endpoint", solvers[1].server.url]
    try:
        proc = start(cmd, tmp_path, "int", data_dir)
        wait_for(lambda: cell_files(out) and all(s.server.gen_requests() for s in solvers), proc,
                 "a cell file and requests on both servers")
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(120)
        for s in solvers:
            s.server.wait_idle()
        check_kept(tmp_path, "int", out, proc.returncode)
        stderr = output(tmp_path, "int")[1]
        assert "2 endpoints: running up to 2 cells at a time" in stderr and "finishing the cells in flight" in stderr
        assert proc.returncode == 130 and len(cell_files(out)) < CELLS, "the run was stopped before the last cell"

        stdout = run_to_end(cmd, tmp_path, "rerun", data_dir)
        folder = Path(stdout.strip().splitlines()[-1].removeprefix("results: "))
        assert len(cell_files(out)) == CELLS and not list(out.rglob("*.tmp*")) and not list(out.rglob(".*.lock"))
        reference = run_to_end(eval_cmd(solvers[0].server.url, bank, tmp_path / "reference"), tmp_path, "one",
                               data_dir)
        one = Path(reference.strip().splitlines()[-1].removeprefix("results: "))
        assert content(folder / "results.parquet").equals(content(one / "results.parquet"))
    finally:
        for s in solvers:
            s.server.close()
