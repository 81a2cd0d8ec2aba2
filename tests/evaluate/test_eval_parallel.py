"""With several endpoints an evaluation runs one cell per endpoint at a time; its results are a sequential run's."""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import defaultdict
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

from conftest import gsm8k_solver
from fake_openai import FakeOpenAI
from flows.build.flow import build_bank
from flows.core.specs import BuildSpec, EvalSpec, Selection
from flows.evaluate.flow import evaluate
from flows.evaluate.flow import Cell
from flows.evaluate.parallel import chains, endpoint_count, run_chains
from generators import prompt_hash
from generators.fake import FakeGenerator
from generators.openai_backend import OpenAIGenerator

pytestmark = pytest.mark.timeout(300)
VARYING = ["run_id", "created_at"]  # a run's id and clock; every other column must match
LOG = logging.getLogger("test_eval_parallel")
BANK_A, BANK_B = SimpleNamespace(label="a"), SimpleNamespace(label="b")  # what a cell reads of its bank


class Endpoints(FakeGenerator):
    """The fake generator posing as a client of several endpoints; counts the calls in flight at once."""

    def __init__(self, script, endpoints: int, latency_s: float):
        super().__init__(script)
        self.endpoints, self.latency = [f"http://fake-{i}" for i in range(endpoints)], latency_s
        self.lock, self.inflight, self.max_inflight = threading.Lock(), 0, 0

    def generate(self, prompts, sampling):
        with self.lock:
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            time.sleep(self.latency)
            return super().generate(prompts, sampling)
        finally:
            with self.lock:
                self.inflight -= 1


@pytest.fixture(scope="module")
def bank(tmp_path_factory, data_dir, prefect_harness) -> str:
    return build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=12)),
                      data_dir=str(data_dir), out=str(tmp_path_factory.mktemp("banks")))


def results(folder) -> list[dict]:
    return pq.read_table(f"{folder}/results.parquet").drop_columns(VARYING).to_pylist()


def test_endpoint_count():
    assert endpoint_count(FakeGenerator()) == 0 and endpoint_count(None) == 0
    assert endpoint_count(Endpoints(gsm8k_solver(2), 3, 0)) == 3


@pytest.mark.usefixtures("prefect_harness")
def test_cells_run_at_once_and_results_equal_a_sequential_run(tmp_path, data_dir, bank):
    spec = EvalSpec(task="gsm8k", banks=(bank,), shots=(0, 2, 4, "max"), seeds=2, orders=2, limit=4, samples=2,
                    max_tokens=32)
    solver = gsm8k_solver(correct_every=2)
    sequential = FakeGenerator(solver)
    one = evaluate(spec, data_dir=str(data_dir), out=str(tmp_path / "one"), generator=sequential)
    parallel = Endpoints(solver, endpoints=3, latency_s=0.3)
    three = evaluate(spec, data_dir=str(data_dir), out=str(tmp_path / "three"), generator=parallel)
    assert parallel.max_inflight > 1, "cells ran one at a time"
    assert sorted(prompt_hash(p) for ps, _ in parallel.calls for p in ps) == \
        sorted(prompt_hash(p) for ps, _ in sequential.calls for p in ps)  # each cell made once
    got, want = results(three.folder), results(one.folder)
    assert len(got) == 4 * 2 * (1 + 2 * 2 * 3) and got == want  # rows in the same (cell) order
    assert 0 < sum(r["correct_strict"] for r in got) < len(got)
    assert three.summary.equals(one.summary) and three.skipped == one.skipped
    assert not list((tmp_path / "three").rglob(".*.lock")) and not list((tmp_path / "three").rglob("*.tmp*"))


@pytest.mark.usefixtures("prefect_harness")
def test_each_cell_goes_to_one_server_and_servers_overlap(tmp_path, data_dir, bank):
    spans: dict[int, list[tuple[float, float, str]]] = defaultdict(list)  # server -> (start, end, cell prefix)

    def latency(i):
        def record(body):
            start = time.monotonic()
            time.sleep(0.2)  # a cell (4 prompts, 2 at a time) takes 0.4 s: long enough to overlap
            spans[i].append((start, time.monotonic(), prompt_hash(body["messages"][:-1])))
            return 0
        return record

    servers = [FakeOpenAI(model="fake-model", latency=latency(i)) for i in range(2)]
    try:
        spec = EvalSpec(task="gsm8k", banks=(bank,), shots=(2, 4), seeds=2, limit=4, model="fake-model",
                        max_tokens=32)
        two = OpenAIGenerator([s.url for s in servers], model="fake-model", route_prefix_chars=256, concurrency=2)
        both = evaluate(spec, data_dir=str(data_dir), out=str(tmp_path / "two"), generator=two)
        where = defaultdict(set)
        for i, rows in spans.items():
            for _, _, prefix in rows:
                where[prefix].add(i)
        assert len(where) == 4 and all(len(s) == 1 for s in where.values()), where  # a cell on one server
        overlap = [(a, b) for a in spans[0] for b in spans[1] if a[0] < b[1] and b[0] < a[1] and a[2] != b[2]]
        assert overlap, "the two servers never served two cells at the same time"
        alone = evaluate(spec, data_dir=str(data_dir), out=str(tmp_path / "one"),
                         generator=OpenAIGenerator(servers[0].url, model="fake-model"))
        assert results(both.folder) == results(alone.folder)
    finally:
        for s in servers:
            s.close()


def test_chains_group_the_k_values_of_one_prefix():
    cells = [Cell(None, 0, 0)] + [Cell(v, seed, k, order=o) for seed in range(2) for v in (BANK_A, BANK_B)
                                  for o in range(2) for k in (2, 4)]
    got = chains(list(enumerate(cells, start=1)))
    assert [[n for n, _ in chain] for chain in got] == [[1]] + [[n, n + 1] for n in range(2, 18, 2)]
    assert all(len({(c.label, c.seed, c.order) for _, c in chain}) == 1 for chain in got)


def test_run_chains_returns_the_deferred_in_order_and_raises_the_first_error():
    started = []

    def step(n, cell):
        started.append(n)
        time.sleep(0.02)
        if cell == "fail":
            raise ValueError(f"cell {n}")
        return cell != "held"

    assert run_chains(step, [[(1, "ok"), (4, "held")], [(2, "held"), (3, "ok")], [(5, "ok")]], 3, LOG) == \
        [(2, "held"), (4, "held")]
    assert sorted(started) == [1, 2, 3, 4, 5]
    started.clear()
    with pytest.raises(ValueError, match="cell 2"):
        run_chains(step, [[(1, "ok")], [(2, "fail"), (3, "ok")], [(4, "fail")]] + [[(n, "ok")] for n in range(5, 30)],
                   2, LOG)
    assert 3 not in started and len(started) < 29  # the failed chain and the pass stopped


@pytest.mark.parametrize("signals", [1, 2])
def test_a_signal_finishes_the_cells_in_flight_and_a_second_abandons_them(signals):
    started, finished = [], []

    def step(n, cell):
        started.append(n)
        time.sleep(0.6)
        finished.append(n)
        return True

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGUSR1, interrupt)
    try:
        for at in (0.2, 0.3)[:signals]:
            threading.Timer(at, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_chains(step, [[(n, "ok"), (n + 10, "ok")] for n in range(1, 9)], 2, LOG)
        waited = time.monotonic() - t0
        assert sorted(started) == [1, 2]  # no cell started after the signal
        if signals == 1:
            assert waited >= 0.55 and sorted(finished) == [1, 2]  # the cells in flight were finished
        else:
            assert waited < 0.55 and finished == []  # abandoned at the second signal
    finally:
        signal.signal(signal.SIGUSR1, previous)
        time.sleep(0.8)  # the abandoned workers end before the next test
