"""Prefix routing against real server PROCESSES: three stub OpenAI servers (``tests/openai_stub.py``, no model) on
127.0.0.1, one of them SIGKILLed mid-run."""
from __future__ import annotations

import collections
import threading
import time

import pytest

from generators.base import Sampling
from generators.openai_backend import OpenAIGenerator

from openai_stub import StubProcess

pytestmark = [pytest.mark.server, pytest.mark.timeout(120)]

CHARS = 1024
FAST = dict(backoff_s=0.05, max_backoff_s=0.2, timeout_s=10.0, connect_timeout_s=1.0)


@pytest.fixture
def stubs(tmp_path):
    made: list[StubProcess] = []

    def make(n: int, latency: float = 0.0) -> list[StubProcess]:
        for _ in range(n):
            made.append(StubProcess("--latency", str(latency), log=tmp_path / f"served-{len(made)}.jsonl"))
        return made[-n:]

    yield make
    for s in made:
        s.kill()


def cell(group: str, n: int, shots: int = 12) -> list[list[dict]]:
    """``n`` prompts sharing ``shots`` shots of ``group`` (about 2,000 characters), then their own question."""
    prefix = [{"role": "system", "content": "Answer briefly."}]
    for j in range(shots):
        prefix += [{"role": "user", "content": f"{group} shot {j}: " + " ".join(f"w{j}x{i}" for i in range(12))},
                   {"role": "assistant", "content": f"{group} answer {j}: " + " ".join(f"a{j}y{i}" for i in range(6))}]
    return [prefix + [{"role": "user", "content": f"{group} question {i}"}] for i in range(n)]


def where(servers: list[StubProcess]) -> dict[str, set[int]]:
    """Group -> the servers (indexes) that answered its prompts."""
    out: dict[str, set[int]] = collections.defaultdict(set)
    for i, s in enumerate(servers):
        for line in s.served():
            out[line["last"].split()[0]].add(i)
    return dict(out)


def test_groups_pinned_and_spread_over_server_processes(stubs):
    servers = stubs(3, latency=0.02)
    gen = OpenAIGenerator([s.url for s in servers], route_prefix_chars=CHARS, concurrency=4, **FAST)
    assert gen.model_id == "stub-model"
    batch = cell("alpha", 8) + cell("beta", 8) + cell("gamma", 8)
    out = gen.generate(batch, Sampling(n=2, seed=4))
    assert [c.texts[0] for c in out] == [f"{p[-1]['content']} | seed={4 + i} s=0" for i, p in enumerate(batch)]
    groups = where(servers)
    assert sorted(groups) == ["alpha", "beta", "gamma"]
    assert all(len(s) == 1 for s in groups.values())  # every group on one server
    assert set.union(*groups.values()) == {0, 1, 2}  # three groups, three servers
    # each server computed its group's prefix, then read it from its cache
    assert all(sum(line["cached_tokens"] for line in s.served()) > 0 for s in servers)
    assert sum(gen.last_run["cached_tokens"].values()) == sum(line["cached_tokens"] for s in servers for line in s.served())

    # the next cell of the first group goes where its prefix is cached
    home = groups["alpha"]
    gen.generate(cell("alpha", 4, shots=20), Sampling(seed=9))
    assert where(servers)["alpha"] == home


def test_killed_server_work_moves_and_results_equal_a_single_server_run(stubs):
    servers = stubs(3, latency=0.05)
    reference_server = stubs(1)[0]
    gen = OpenAIGenerator([s.url for s in servers], route_prefix_chars=CHARS, concurrency=2, **FAST)
    batch = cell("delta", 40)
    sampling = Sampling(n=2, temperature=0.7, seed=11)
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(out=gen.generate(batch, sampling)), daemon=True)
    worker.start()
    deadline = time.monotonic() + 30
    while not any(len(s.served()) >= 4 for s in servers):
        assert time.monotonic() < deadline and worker.is_alive(), "no server answered 4 prompts"
        time.sleep(0.01)
    victim = next(i for i, s in enumerate(servers) if s.served())
    servers[victim].kill()
    worker.join(timeout=60)
    assert not worker.is_alive() and "out" in outcome
    single = OpenAIGenerator(reference_server.url, route_prefix_chars=0, **FAST).generate(batch, sampling)
    assert outcome["out"] == single
    dead = gen.endpoints[victim]
    assert list(gen.last_run["dead"]) == [dead]
    assert 1 <= gen.last_run["done_by"][dead] < 40  # what it answered before the kill (its log can have one more)
    groups = where(servers)
    assert victim in groups["delta"] and len(groups["delta"]) == 2  # the victim, then one live server
    assert sum(gen.last_run["done_by"].values()) == 40
