"""Prefix routing of the OpenAI backend: route keys, groups pinned to one endpoint, spread, failover."""
from __future__ import annotations

import collections
import threading

import pytest

from generators.base import Sampling
from generators.openai_backend import AllEndpointsFailedError, OpenAIGenerator
from generators.openai_routing import Router, route_key, shared_text

from fake_openai import FakeOpenAI, free_port

pytestmark = pytest.mark.timeout(60)

FAST = dict(backoff_s=0.01, max_backoff_s=0.05, timeout_s=5.0, connect_timeout_s=1.0)
CHARS = 512


def shots(group: str, k: int) -> list[tuple[str, str]]:
    return [(f"{group} problem {j}: " + "x" * 60, f"{group} solution {j}: " + "y" * 60) for j in range(k)]


def prompt(group: str, question: str, k: int = 8) -> list[dict]:
    """A cell's prompt: the system message, ``k`` shots of ``group`` (about 140 characters each), the question."""
    messages = [{"role": "system", "content": "Solve it."}]
    for q, a in shots(group, k):
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return messages + [{"role": "user", "content": f"{group} question {question}"}]


def cell(group: str, n: int, k: int = 8) -> list[list[dict]]:
    return [prompt(group, str(i), k) for i in range(n)]


def served(fakes: list[FakeOpenAI]) -> dict[str, set[int]]:
    """Group name -> the indexes of the fake servers that answered its prompts."""
    out: dict[str, set[int]] = collections.defaultdict(set)
    for i, f in enumerate(fakes):
        for body in f.gen_requests():
            out[body["messages"][-1]["content"].split()[0]].add(i)
    return dict(out)


# -- keys ----------------------------------------------------------------------------------------


def test_route_key_is_the_leading_chunk_of_everything_but_the_last_message():
    a, b = prompt("g", "1"), prompt("g", "2")
    assert shared_text(a) == shared_text(b) and len(shared_text(a)) > CHARS
    assert route_key(a, CHARS) == route_key(b, CHARS) is not None
    assert route_key(prompt("h", "1"), CHARS) != route_key(a, CHARS)
    # more shots of the same order (a larger K of the same seed) keep the key: the leading chunk is the same
    assert route_key(prompt("g", "9", k=20), CHARS) == route_key(a, CHARS)
    # a shared part shorter than the chunk (few shots, zero-shot, one-message prompts) gives no key
    assert route_key(prompt("g", "1", k=2), CHARS) is None
    assert route_key([{"role": "user", "content": "z" * 5000}], CHARS) is None
    assert route_key(a, 0) is None
    # the key reads only the messages it needs, and equals the key of the whole text's first characters
    assert shared_text(a, 10) == "system\x1fSolve it."
    assert route_key(a, 300) == route_key([*a[:5], {"role": "user", "content": "q"}], 300) is not None
    # the question is never part of the key, the roles are
    swapped = [dict(m, role="user") for m in a]
    assert route_key(swapped, CHARS) != route_key(a, CHARS)


def test_router_places_new_groups_on_the_least_loaded_and_keeps_known_ones():
    router = Router(["a", "b", "c"], CHARS, salt="s")
    first = router.place("k1", 5, ["a", "b", "c"])
    second = router.place("k2", 3, ["a", "b", "c"])
    third = router.place("k3", 3, ["a", "b", "c"])
    assert len({first, second, third}) == 3
    assert router.place("k1", 1, ["a", "b", "c"]) == first  # known: stays, whatever the load
    other = [ep for ep in "abc" if ep != first]
    assert router.place("k1", 1, other) in other  # its endpoint is not live: placed again
    assert router.load()[first] == 6
    router.release(first, 6)
    assert router.load()[first] == 0
    with pytest.raises(ValueError, match="no live endpoint"):
        router.place("k4", 1, [])
    with pytest.raises(ValueError, match="route_prefix_chars"):
        Router(["a"], -1)


# -- pinning and spreading -------------------------------------------------------------------------


def test_one_group_goes_to_one_server_and_equals_a_single_server_run(servers):
    fakes = [servers(latency=0.01) for _ in range(3)]
    gen = OpenAIGenerator([f.url for f in fakes], route_prefix_chars=CHARS, **FAST)
    out = gen.generate(cell("g", 12), Sampling(n=2, seed=3))
    assert len(served(fakes)["g"]) == 1
    assert list(gen.last_run["done_by"].values()) == [12] and gen.last_run["pinned"] == 12
    assert list(gen.last_run["groups"].values()) == [1]
    single = OpenAIGenerator(fakes[0].url, route_prefix_chars=0, **FAST).generate(cell("g", 12), Sampling(n=2, seed=3))
    assert out == single


def test_many_groups_spread_evenly_and_each_stays_on_one_server(servers):
    fakes = [servers(latency=0.01) for _ in range(3)]
    gen = OpenAIGenerator([f.url for f in fakes], route_prefix_chars=CHARS, **FAST)
    batch = [p for g in "abcdef" for p in cell(g, 4)]
    out = gen.generate(batch, Sampling(seed=1))
    assert [c.texts[0].split(" |")[0] for c in out] == [p[-1]["content"] for p in batch]
    by_group = served(fakes)
    assert all(len(where) == 1 for where in by_group.values()) and len(by_group) == 6
    assert sorted(gen.last_run["groups"].values()) == [2, 2, 2]
    assert sorted(gen.last_run["done_by"].values()) == [8, 8, 8]


def test_groups_keep_their_server_across_calls_and_short_prefixes_are_shared(servers):
    fakes = [servers(latency=0.04) for _ in range(2)]
    gen = OpenAIGenerator([f.url for f in fakes], route_prefix_chars=CHARS, concurrency=2, **FAST)
    gen.generate(cell("a", 3) + cell("c", 3), Sampling())  # two groups: both servers (and their clients) used
    home = served(fakes)["a"]
    assert served(fakes)["c"] == {0, 1} - home
    for f in fakes:
        f.requests.clear()
    # the next cell of the same shot order (more shots) and a new group; then prompts too short to pin
    gen.generate(cell("a", 3, k=12) + cell("b", 3) + cell("z", 16, k=1), Sampling())
    where = served(fakes)
    assert where["a"] == home and len(where["b"]) == 1 and where["b"] != home
    assert where["z"] == {0, 1}  # no key: both servers took from the shared queue
    assert gen.last_run["pinned"] == 6 and gen.router.load() == {ep: 0 for ep in gen.endpoints}


def test_concurrent_calls_put_their_cells_on_different_servers(servers):
    fakes = [servers(latency=0.05) for _ in range(2)]
    gen = OpenAIGenerator([f.url for f in fakes], route_prefix_chars=CHARS, concurrency=2, **FAST)
    threads = [threading.Thread(target=gen.generate, args=(cell(g, 6), Sampling())) for g in "pq"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    where = served(fakes)
    assert len(where["p"]) == len(where["q"]) == 1 and where["p"] != where["q"]
    assert gen.router.load() == {ep: 0 for ep in gen.endpoints}


def test_routing_off_shares_one_group_over_all_servers(servers):
    fakes = [servers(latency=0.1) for _ in range(2)]  # long enough for the second server's client to start
    gen = OpenAIGenerator([f.url for f in fakes], route_prefix_chars=0, concurrency=2, **FAST)
    gen.generate(cell("g", 12), Sampling())
    assert served(fakes)["g"] == {0, 1} and gen.last_run["pinned"] == 0 and gen.last_run["groups"] == {}


def test_route_prefix_chars_from_the_environment(monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MANYSHOT_ROUTE_PREFIX_CHARS", "123")
    assert OpenAIGenerator(url, model="m", max_model_len=9).router.chars == 123
    monkeypatch.delenv("MANYSHOT_ROUTE_PREFIX_CHARS")
    assert OpenAIGenerator(url, model="m", max_model_len=9).router.chars == 4096
    assert OpenAIGenerator(url, model="m", max_model_len=9, route_prefix_chars=7).router.chars == 7


# -- failover ------------------------------------------------------------------------------------


def test_groups_of_a_dead_server_move_to_the_live_ones(servers):
    alive = [servers(), servers()]
    dead = f"http://127.0.0.1:{free_port()}/v1"
    gen = OpenAIGenerator([dead, alive[0].url, alive[1].url], model="fake-model", max_model_len=2048,
                          route_prefix_chars=CHARS, **FAST)
    batch = [p for g in "abcdef" for p in cell(g, 3)]
    out = gen.generate(batch, Sampling(n=2, seed=5))
    assert all(len(where) == 1 for where in served(alive).values())  # a moved group still has one server
    assert out == OpenAIGenerator(alive[0].url, route_prefix_chars=0, **FAST).generate(batch, Sampling(n=2, seed=5))
    assert gen.endpoints[0] in gen.last_run["dead"] and gen.endpoints[0] not in gen.last_run["done_by"]
    # the dead server's two groups went to the least loaded live servers when it was declared dead
    assert sum(gen.last_run["groups"].values()) == 6 and min(gen.last_run["groups"].values()) >= 2
    assert gen.router.load() == {ep: 0 for ep in gen.endpoints}


def test_server_dying_mid_group_moves_the_rest_of_the_group(servers):
    fakes = [servers(latency=0.02) for _ in range(3)]
    gen = OpenAIGenerator([f.url for f in fakes], route_prefix_chars=CHARS, concurrency=2, **FAST)
    gen.generate(cell("g", 1), Sampling())  # learn the group's server
    victim = next(f for f in fakes if f.gen_requests())

    def die_from_question_2(body):  # questions 0 and 1 are the first two taken
        if int(body["messages"][-1]["content"].split()[-1]) >= 2:
            victim.dead = True
        return None
    victim.hook = die_from_question_2
    out = gen.generate(cell("g", 16), Sampling(seed=2))
    reference = OpenAIGenerator(fakes[0].url if victim is not fakes[0] else fakes[1].url, route_prefix_chars=0,
                                **FAST).generate(cell("g", 16), Sampling(seed=2))
    assert out == reference
    dead_url = gen.endpoints[fakes.index(victim)]
    assert list(gen.last_run["dead"]) == [dead_url]
    survivors = {ep for ep in gen.last_run["done_by"] if ep != dead_url}
    assert len(survivors) == 1  # the rest of the group went to one live server
    assert gen.last_run["done_by"][dead_url] in (1, 2)  # questions 0 and 1 (1 may lose the race to the kill)
    assert sum(gen.last_run["done_by"].values()) == 16


def test_all_servers_dying_gives_the_load_back(servers):
    a, b = servers(), servers()

    def die(body):
        a.dead = b.dead = True
        return None
    a.hook = b.hook = die
    gen = OpenAIGenerator([a.url, b.url], route_prefix_chars=CHARS, concurrency=1, **FAST)
    with pytest.raises(AllEndpointsFailedError):
        gen.generate(cell("g", 4) + cell("h", 4), Sampling())
    assert gen.router.load() == {ep: 0 for ep in gen.endpoints}
