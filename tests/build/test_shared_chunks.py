"""Chunk locks inside the build flows: a chunk another process holds is skipped, then made once its holder
dies; a refresh's first version shares the plain build's checkpoints."""
from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import bank_content, gsm8k_solver, small_spec
from flows.runtime import banks
from flows.build import refresh as rf
from flows.build.flow import build_bank, chunks
from flows.build.sources import key_config
from flows.core.specs import config_key
from flows.core.data import load_problems, select
from generators.fake import FakeGenerator

pytestmark = pytest.mark.usefixtures("prefect_harness")
ROOT = Path(__file__).resolve().parents[2]
LIMIT, CHUNK = 12, 4

HOLD = """
import sys, time
from flows.runtime.locks import FileLock
assert FileLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(600)
"""


spec = functools.partial(small_spec, limit=LIMIT, chunk_size=CHUNK)


def chunk_paths(out: Path, data_dir: Path) -> tuple[list[Path], list[list[str]]]:
    problems = select(load_problems("gsm8k", "train", data_dir), limit=LIMIT, seed=0)
    parts = chunks(problems, CHUNK)
    store = banks.ChunkStore(out, config_key(key_config(spec(), with_limit=False)))
    return [store.path(c.key) for c in parts], [[p.question for p in c.problems] for c in parts]


@pytest.mark.parametrize("runner", [build_bank, functools.partial(build_bank, submit=True)], ids=["serial", "sharded"])
def test_a_chunk_held_elsewhere_is_skipped_then_made_when_its_holder_dies(tmp_path, data_dir, runner):
    out = tmp_path / "banks"
    paths, questions = chunk_paths(out, data_dir)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(paths[1])], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    state = {}

    def kill_when_the_others_are_done():
        deadline = time.monotonic() + 120
        while not (paths[0].exists() and paths[2].exists()) and time.monotonic() < deadline:
            time.sleep(0.05)
        state["others_done_first"] = not paths[1].exists()
        os.kill(holder.pid, signal.SIGKILL)
    killer = threading.Thread(target=kill_when_the_others_are_done, daemon=True)
    killer.start()
    try:
        gen = FakeGenerator(gsm8k_solver())
        path = runner(spec(), data_dir=str(data_dir), out=str(out), generator=gen)
        killer.join(10)
        assert state["others_done_first"], "chunks 0 and 2 are made while chunk 1 is held elsewhere"
        asked = [[prompt[-1]["content"] for prompt in prompts] for prompts, _ in gen.calls]
        assert len(asked) == 3 and asked[-1] == questions[1], "the held chunk is made last, once"
        assert pq.read_metadata(path).num_rows == LIMIT
        assert not list(out.glob(".work/*/.*.lock"))
    finally:
        holder.kill()
        holder.wait(10)


def test_a_refresh_first_version_shares_the_plain_builds_checkpoints(tmp_path, data_dir):
    solver = gsm8k_solver()
    plain = build_bank(spec(), data_dir=str(data_dir), out=str(tmp_path), generator=FakeGenerator(solver))
    idle = FakeGenerator(solver)
    result = rf.refresh_bank(spec(), "nightly", data_dir=str(data_dir), out=str(tmp_path), generator=idle)
    assert result["status"] == "published" and idle.calls == [], "v1 reuses every chunk of the plain build"
    v1 = banks.read_bank(result["latest"])[0]
    assert bank_content(v1).equals(bank_content(pq.read_table(plain)))

    other = tmp_path / "other"  # and the other way round: a plain build after a refresh's v1
    rf.refresh_bank(spec(), "nightly", data_dir=str(data_dir), out=str(other), generator=FakeGenerator(solver))
    idle = FakeGenerator(solver)
    assert Path(build_bank(spec(), data_dir=str(data_dir), out=str(other), generator=idle)).name == Path(plain).name
    assert idle.calls == []
