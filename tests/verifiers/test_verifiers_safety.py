"""Hostile inputs, hard deadlines off the main thread, pool recovery and thread safety."""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from verifier_cases import CASES
from verifier_hostile import HOSTILE
from verifiers import pool, verify, verify_many

DEADLINE_S = 2.0
# Deadline plus room for a replacement worker to start after a killed one.
WALL_CLOCK_BOUND_S = DEADLINE_S + 6.0
PWNED = "/tmp/manyshot_pwned"


@pytest.mark.parametrize("case", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_input_is_bounded_and_never_wrongly_accepted(case):
    name, gold, pred, task, expected = case
    start = time.monotonic()
    verdict = verify(gold, pred, task, timeout_s=DEADLINE_S)
    elapsed = time.monotonic() - start
    assert elapsed < WALL_CLOCK_BOUND_S, (name, elapsed)
    assert verdict.correct is expected, verdict
    assert not os.path.exists(PWNED)


def test_hostile_batch_through_pool_then_pool_still_works():
    pairs = [(gold, pred) for _, gold, pred, task, _ in HOSTILE if task == "math"]
    start = time.monotonic()
    verdicts = verify_many(pairs, fmt="math", timeout_s=DEADLINE_S)
    assert time.monotonic() - start < 60
    expected = [e for _, _, _, task, e in HOSTILE if task == "math"]
    assert [v.correct for v in verdicts] == expected
    assert verify(r"2\sqrt{2}", r"\sqrt{8}").correct is True


@pytest.fixture
def slow_worker():
    pool.set_test_delay(5.0)
    try:
        yield
    finally:
        pool.set_test_delay(0.0)


def _timed_verify() -> tuple[object, float]:
    start = time.monotonic()
    verdict = verify(r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}", timeout_s=0.5)
    return verdict, time.monotonic() - start


def test_timeout_kills_slow_worker_and_pool_recovers(slow_worker):
    verify("1", r"\sqrt{1}")  # make sure a worker is up, so the deadline is all that is measured
    restarts = pool.get_pool().restarts
    verdict, elapsed = _timed_verify()
    assert verdict.correct is False
    assert verdict.error == "timeout"
    assert verdict.method == "error"
    assert elapsed < 3.0
    assert pool.get_pool().restarts == restarts + 1
    pool.set_test_delay(0.0)
    assert verify(r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}").correct is True


def test_timeout_works_off_the_main_thread(slow_worker):
    with ThreadPoolExecutor(max_workers=3) as executor:
        results = list(executor.map(lambda _: _timed_verify(), range(3)))
    for verdict, elapsed in results:
        assert verdict.error == "timeout" and verdict.correct is False  # the deadline fired in each thread
        # Three calls may queue for workers, each killed one respawned (sympy import) on a possibly busy box;
        # the bound only rules out a hang.
        assert elapsed < 20.0
    pool.set_test_delay(0.0)
    assert verify("x^2-1", "(x-1)(x+1)").correct is True


def test_verify_from_many_threads_equals_serial():
    cases = CASES[::3]
    serial = [verify(g, p, task) for _, g, p, task, _ in cases]
    results: list = [None] * len(cases)
    barrier = threading.Barrier(8)

    def run(offset: int) -> None:
        barrier.wait()
        for i in range(offset, len(cases), 8):
            _, g, p, task, _ = cases[i]
            results[i] = verify(g, p, task)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert results == serial
    assert [v.correct for v in results] == [c[4] for c in cases]


def test_pool_shutdown_and_restart():
    assert verify("x+x", "2x").correct is True
    pool.shutdown()
    assert verify("x+x", "2x").correct is True
