"""Checkpoint locks (flows.runtime.locks): exclusion between processes, release when the holder is killed, and
produce_missing making each checkpoint once across concurrent callers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flows.runtime.locks import FileLock, claim, lock_path, produce_missing

ROOT = Path(__file__).resolve().parents[2]

HOLD = """
import sys, time
from flows.runtime.locks import FileLock
lock = FileLock(sys.argv[1])
assert lock.acquire()
print("held", flush=True)
time.sleep(600)
"""


def holder(path: Path) -> subprocess.Popen:
    """A separate process that takes the lock of ``path`` and sleeps holding it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_claim_is_exclusive_and_removes_its_lock_file(tmp_path):
    path = tmp_path / "cell.parquet"
    with claim(path) as got:
        assert got and lock_path(path).exists()
        with claim(path) as again:  # a second file description, even in the same process, is refused
            assert again is False
    assert not lock_path(path).exists()
    with claim(path) as got:
        assert got


def test_lock_of_a_sigkilled_process_is_released(tmp_path):
    path = tmp_path / "chunk-a.parquet"
    proc = holder(path)
    try:
        with claim(path) as got:
            assert got is False, "a live process holds it"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert lock_path(path).exists(), "a killed holder cannot remove its lock file"
        with claim(path) as got:  # the kernel dropped the flock: no staleness check needed
            assert got
        assert not lock_path(path).exists()
    finally:
        proc.kill()
        proc.wait(10)


def test_a_waiter_gets_the_lock_when_its_holder_is_killed(tmp_path):
    path = tmp_path / "chunk-b.parquet"
    proc = holder(path)
    got = threading.Event()

    def wait_for_it():
        with claim(path, wait=True):
            got.set()
    waiter = threading.Thread(target=wait_for_it, daemon=True)
    waiter.start()
    try:
        time.sleep(0.5)
        assert not got.is_set()
        os.kill(proc.pid, signal.SIGKILL)
        waiter.join(10)
        assert got.is_set()
    finally:
        proc.kill()
        proc.wait(10)


def test_waiters_queued_on_a_removed_lock_file_still_exclude_each_other(tmp_path):
    """A holder removes its lock file on release; waiters that had opened the old file must not both
    end up "holding" it while a newcomer locks a new file."""
    path = tmp_path / "cell.parquet"
    first = FileLock(path)
    assert first.acquire()
    inside, overlaps = [], []
    guard = threading.Lock()

    def worker():
        with claim(path, wait=True):
            with guard:
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(len(inside))
            time.sleep(0.05)
            with guard:
                inside.pop()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    first.release()
    for t in threads:
        t.join(10)
    assert not overlaps and not inside


def test_produce_missing_skips_held_checkpoints_then_waits_and_reuses_them(tmp_path):
    paths = [tmp_path / f"c{i}.txt" for i in range(3)]
    paths[0].write_text("done before")
    other = FileLock(paths[1])
    assert other.acquire()
    order: list[str] = []

    def make(i):
        order.append(f"make {i}")
        paths[i].write_text(f"made {i}")

    def waiting(i):
        order.append(f"wait {i}")
        paths[1].write_text("made by the other process")  # the holder finishes, then lets go
        other.release()
    made = produce_missing(paths, make, on_wait=waiting)
    assert made == [2] and order == ["make 2", "wait 1"]
    assert paths[1].read_text() == "made by the other process"


def test_produce_missing_makes_a_checkpoint_whose_holder_died(tmp_path):
    paths = [tmp_path / "c0.txt", tmp_path / "c1.txt"]
    proc = holder(paths[0])
    try:
        waited = []

        def waiting(i):
            waited.append(i)
            os.kill(proc.pid, signal.SIGKILL)  # dies without writing its checkpoint
        made = produce_missing(paths, lambda i: paths[i].write_text(str(i)), on_wait=waiting)
        assert made == [1, 0] and waited == [0]
        assert [p.read_text() for p in paths] == ["0", "1"]
    finally:
        proc.kill()
        proc.wait(10)


MAKER = """
import sys, time
from pathlib import Path
from flows.runtime.locks import produce_missing
paths = [Path(sys.argv[1]) / f"c{i}.txt" for i in range(6)]
def make(i):
    with open(Path(sys.argv[1]) / "log.txt", "a") as log:
        log.write(f"{i}\\n")
    time.sleep(0.3)
    tmp = paths[i].with_suffix(".tmp" + sys.argv[2])
    tmp.write_text(sys.argv[2])
    tmp.replace(paths[i])
print(produce_missing(paths, make))
"""


def test_concurrent_processes_make_each_checkpoint_once(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", MAKER, str(tmp_path), str(n)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(3)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    made = [parse_list(out) for out, _ in outs]
    assert sorted(i for m in made for i in m) == list(range(6)), made
    assert sorted((tmp_path / "log.txt").read_text().split()) == [str(i) for i in range(6)]
    assert all((tmp_path / f"c{i}.txt").exists() for i in range(6))
    assert not list(tmp_path.glob(".*.lock"))


def parse_list(text: str) -> list[int]:
    return [int(x) for x in text.strip().strip("[]").split(",") if x.strip()]


@pytest.mark.parametrize("wait", [False, True])
def test_claim_releases_when_the_body_raises(tmp_path, wait):
    path = tmp_path / "x"
    with pytest.raises(ZeroDivisionError):
        with claim(path, wait=wait):
            1 / 0
    with claim(path) as got:
        assert got
