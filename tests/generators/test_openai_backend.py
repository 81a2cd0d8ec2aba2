"""Fast tests of the OpenAI-compatible backend against a scripted in-process fake server."""
from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from generators.base import BadRequestError, Completion, GenerationError, Generator, Sampling
from generators.openai_backend import (AllEndpointsFailedError, OpenAIBadRequestError, OpenAIGenerator,
                                       estimate_tokens, request_seed)
from generators.prompts import render_completion

from fake_openai import free_port

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
FAST = dict(backoff_s=0.01, max_backoff_s=0.05, timeout_s=5.0, connect_timeout_s=1.0)


def prompts(k: int) -> list[list[dict]]:
    return [[{"role": "system", "content": "be brief"}, {"role": "user", "content": f"question {i}"}]
            for i in range(k)]


def texts(results: list[Completion]) -> list[tuple[str, ...]]:
    return [c.texts for c in results]


# -- construction --------------------------------------------------------------------------------


def test_discovers_model_and_max_len(servers):
    srv = servers(model="served/model", max_model_len=1234)
    gen = OpenAIGenerator(srv.url, **FAST)
    assert isinstance(gen, Generator)
    assert (gen.model_id, gen.max_model_len, gen.chat) == ("served/model", 1234, True)


def test_explicit_model_and_len_need_no_server():
    gen = OpenAIGenerator(f"http://127.0.0.1:{free_port()}", model="m", max_model_len=99)
    assert (gen.model_id, gen.max_model_len, gen.endpoints) == ("m", 99, [gen.endpoints[0]])
    assert not gen.endpoints[0].endswith("/v1")


def test_missing_max_model_len_is_an_error(servers):
    srv = servers(max_model_len=None)
    with pytest.raises(ValueError, match="max_model_len"):
        OpenAIGenerator(srv.url, **FAST)
    assert OpenAIGenerator(srv.url, max_model_len=512, **FAST).max_model_len == 512


def test_api_key_from_argument_and_env(servers, monkeypatch):
    srv = servers()
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    OpenAIGenerator(srv.url, **FAST).generate(prompts(1), Sampling())
    OpenAIGenerator(srv.url, api_key="arg-key", **FAST).generate(prompts(1), Sampling())
    auth = [h.get("Authorization") for p, _, h in srv.requests if p.endswith("completions")]
    assert auth == ["Bearer env-key", "Bearer arg-key"]
    monkeypatch.delenv("OPENAI_API_KEY")
    OpenAIGenerator(srv.url, **FAST).generate(prompts(1), Sampling())
    assert "Authorization" not in srv.requests[-1][2]


# -- requests and responses ----------------------------------------------------------------------


def test_chat_request_fields_n_stop_seed(servers):
    srv = servers()
    gen = OpenAIGenerator(srv.url, **FAST)
    sampling = Sampling(n=3, temperature=0.7, top_p=0.9, max_tokens=64, stop=("r=",), seed=11)
    out = gen.generate(prompts(4), sampling)
    assert len(out) == 4
    bodies = sorted(srv.gen_requests(), key=lambda b: b["seed"])
    assert [b["seed"] for b in bodies] == [11, 12, 13, 14] == [request_seed(11, i) for i in range(4)]
    for i, (c, b) in enumerate(zip(out, bodies)):
        assert b["messages"] == prompts(4)[i]
        assert (b["n"], b["temperature"], b["top_p"], b["max_tokens"], b["stop"]) == (3, 0.7, 0.9, 64, ["r="])
        assert "logprobs" not in b and "return_token_ids" not in b
        assert c.texts == tuple(f"question {i} | seed={11 + i} s={s} " for s in range(3))  # cut at the stop
        assert c.prompt_tokens == 7 and c.finish_reasons == ("stop",) * 3
        assert sum(c.completion_tokens) == 3 * 5 and c.logprobs == ()


def test_completions_mode_renders_text_and_logprobs(servers):
    srv = servers()
    gen = OpenAIGenerator(srv.url, chat=False, **FAST)
    out = gen.generate(prompts(2), Sampling(n=2, logprobs=0, seed=5))
    bodies = sorted(srv.gen_requests(), key=lambda b: b["seed"])
    assert [p for p, *_ in srv.requests if p.endswith("completions")] == ["/v1/completions"] * 2
    assert [b["prompt"] for b in bodies] == [render_completion(p) for p in prompts(2)]
    assert all(b["logprobs"] == 0 and "messages" not in b for b in bodies)
    for c in out:
        n_words = [len(t.split()) for t in c.texts]
        assert c.completion_tokens == tuple(n_words)  # counted from the logprob entries
        assert c.logprobs == tuple(-0.25 * k for k in n_words)


def test_chat_logprobs_and_vllm_token_ids(servers):
    srv = servers(owned_by="vllm")
    gen = OpenAIGenerator(srv.url, **FAST)
    assert gen.vllm
    out = gen.generate(prompts(1), Sampling(n=2, logprobs=2))
    body = srv.gen_requests()[0]
    assert body["logprobs"] is True and body["top_logprobs"] == 2 and body["return_token_ids"] is True
    words = [len(t.split()) for t in out[0].texts]
    assert out[0].completion_tokens == tuple(words)
    assert out[0].logprobs == tuple(-0.5 * k for k in words)


def test_usage_split_and_unknown_counts(servers):
    def no_usage(body):
        return 200, {"choices": [{"index": i, "message": {"content": "ab" * (i + 1)}, "finish_reason": "length"}
                                 for i in range(body["n"])]}
    srv = servers(hook=no_usage)
    gen = OpenAIGenerator(srv.url, **FAST)
    c = gen.generate(prompts(1), Sampling(n=2))[0]
    assert (c.prompt_tokens, c.completion_tokens, c.finish_reasons) == (-1, (-1, -1), ("length", "length"))

    def usage_only(body):
        return 200, {"choices": [{"index": i, "message": {"content": "x" * (10 * (i + 1) - 1)}}
                                 for i in range(body["n"])],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 31}}
    srv.hook = usage_only
    c = gen.generate(prompts(1), Sampling(n=2))[0]
    assert c.prompt_tokens == 3 and sum(c.completion_tokens) == 31 and c.completion_tokens[1] > c.completion_tokens[0]
    c = gen.generate(prompts(1), Sampling(n=1))[0]
    assert c.completion_tokens == (31,)


def test_order_preserved_under_concurrency(servers):
    srv = servers(latency=lambda body: random.Random(body["seed"]).uniform(0, 0.05))
    gen = OpenAIGenerator(srv.url, concurrency=6, **FAST)
    out = gen.generate(prompts(40), Sampling(seed=100))
    assert [c.texts[0].split(" |")[0] for c in out] == [f"question {i}" for i in range(40)]
    assert srv.max_inflight > 1 and srv.max_inflight <= 6


def test_concurrency_bound_holds_across_calls(servers):
    srv = servers(latency=0.03)
    gen = OpenAIGenerator(srv.url, concurrency=3, **FAST)
    threads = [threading.Thread(target=gen.generate, args=(prompts(9), Sampling())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert srv.max_inflight == 3


def test_works_inside_running_event_loop_and_from_threads(servers):
    srv = servers()
    gen = OpenAIGenerator(srv.url, **FAST)
    expected = texts(gen.generate(prompts(5), Sampling(seed=3)))

    async def inside_loop():
        in_loop = gen.generate(prompts(5), Sampling(seed=3))  # blocking call inside a running loop
        in_executor = await asyncio.get_running_loop().run_in_executor(
            None, gen.generate, prompts(5), Sampling(seed=3))
        return texts(in_loop), texts(in_executor)

    assert asyncio.run(inside_loop()) == (expected, expected)


def test_empty_batch_and_bad_n(servers):
    srv = servers()
    gen = OpenAIGenerator(srv.url, **FAST)
    assert gen.generate([], Sampling()) == []
    with pytest.raises(ValueError):
        gen.generate(prompts(1), Sampling(n=0))


# -- failures ------------------------------------------------------------------------------------


def test_retries_5xx_then_succeeds(servers):
    srv = servers(fail_first=3)
    gen = OpenAIGenerator(srv.url, concurrency=1, max_retries=3, **FAST)
    out = gen.generate(prompts(3), Sampling())
    assert texts(out) == texts(OpenAIGenerator(srv.url, **FAST).generate(prompts(3), Sampling()))
    assert gen.last_run["retries"] == {gen.endpoints[0]: 3}


def test_retry_after_on_429_is_honoured(servers):
    calls = []

    def limited(body):
        calls.append(time.monotonic())
        if len(calls) == 1:
            return 429, {"error": {"message": "slow down"}}, {"Retry-After": "0.4"}
        return None
    srv = servers(hook=limited)
    gen = OpenAIGenerator(srv.url, backoff_s=0.01, max_backoff_s=5.0, timeout_s=5)
    assert gen.generate(prompts(1), Sampling())[0].texts
    # at least Retry-After, far from max_backoff_s; the slack is for a loaded machine
    assert len(calls) == 2 and 0.35 < calls[1] - calls[0] < 2.5


def test_400_is_a_clear_bad_request_without_retries(servers):
    srv = servers(hook=lambda body: (400, {"error": {"message": "This model's maximum context length is 2048"}})
                  if body["messages"][-1]["content"] == "question 2" else None)
    gen = OpenAIGenerator(srv.url, **FAST)
    t0 = time.monotonic()
    with pytest.raises(BadRequestError) as info:
        gen.generate(prompts(4), Sampling())
    assert time.monotonic() - t0 < 2
    err = info.value
    assert isinstance(err, OpenAIBadRequestError) and not isinstance(err, GenerationError)
    assert err.status == 400 and "maximum context length" in err.message
    assert "HTTP 400" in str(err) and srv.url.removesuffix("/v1") in str(err)
    bad = [b for b in srv.gen_requests() if b["messages"][-1]["content"] == "question 2"]
    assert len(bad) == 1


def test_server_rejecting_n_falls_back_to_single_requests(servers):
    srv = servers(max_n=1)
    gen = OpenAIGenerator(srv.url, **FAST)
    out = gen.generate(prompts(2), Sampling(n=3, seed=1))
    assert all(len(c.texts) == 3 and len(set(c.texts)) == 3 for c in out)
    assert gen.generate(prompts(2), Sampling(n=3, seed=1)) == out  # deterministic
    split = OpenAIGenerator(srv.url, split_n=True, **FAST)
    assert split.generate(prompts(2), Sampling(n=3, seed=1)) == out


def test_timeouts_are_retried_then_fail_clearly(servers):
    slow = {"first": True}

    def latency(body):
        if slow["first"]:
            slow["first"] = False
            return 4.0
        return 0.0
    srv = servers(latency=latency)
    # the timeout leaves a fast answer room on a loaded machine (0.3 s was not always enough)
    gen = OpenAIGenerator(srv.url, max_retries=2, backoff_s=0.01, max_backoff_s=0.05, timeout_s=1.0)
    assert len(gen.generate(prompts(1), Sampling())) == 1  # first attempt times out, the retry succeeds
    assert gen.last_run["retries"] == {gen.endpoints[0]: 1}

    srv.latency = 4.0
    t0 = time.monotonic()
    with pytest.raises(GenerationError) as info:
        gen.generate(prompts(1), Sampling())
    assert time.monotonic() - t0 < 8  # three 1 s timeouts, not three 4 s answers
    msg = str(info.value)
    assert gen.endpoints[0] in msg and "3 attempts" in msg and "Timeout" in msg


def test_dead_server_fails_clearly_and_quickly():
    url = f"http://127.0.0.1:{free_port()}/v1"
    gen = OpenAIGenerator(url, model="m", max_model_len=100, max_retries=3, backoff_s=0.05,
                          max_backoff_s=0.2, connect_timeout_s=1)
    t0 = time.monotonic()
    with pytest.raises(GenerationError) as info:
        gen.generate(prompts(3), Sampling())
    assert time.monotonic() - t0 < 5
    msg = str(info.value)
    assert url.removesuffix("/v1") in msg and "4 attempts" in msg and "ConnectError" in msg
    assert "0/3 prompts completed" in msg
    assert isinstance(info.value, AllEndpointsFailedError) and info.value.partial == [None] * 3


def test_discovery_on_dead_server_fails_clearly():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(GenerationError, match=r"GET /v1/models failed.*2 attempts.*ConnectError"):
        OpenAIGenerator(url, max_retries=1, backoff_s=0.01, max_backoff_s=0.02)


# -- several endpoints ---------------------------------------------------------------------------


def test_two_endpoints_one_dead_returns_everything_in_order(servers):
    alive = servers()
    dead = f"http://127.0.0.1:{free_port()}/v1"
    gen = OpenAIGenerator([dead, alive.url], model="fake-model", max_model_len=2048, concurrency=3, **FAST)
    out = gen.generate(prompts(12), Sampling(n=2, seed=9))
    reference = OpenAIGenerator(alive.url, **FAST).generate(prompts(12), Sampling(n=2, seed=9))
    assert out == reference
    assert gen.last_run["done_by"] == {gen.endpoints[1]: 12}
    assert gen.endpoints[0] in gen.last_run["dead"]


def test_results_identical_for_one_two_three_endpoints(servers):
    latency = lambda body: random.Random(body["seed"] * 7).uniform(0.05, 0.08)  # noqa: E731
    fakes = [servers(latency=latency) for _ in range(3)]
    sampling = Sampling(n=2, temperature=1.0, seed=42)
    results = []
    for k in (1, 2, 3):
        gen = OpenAIGenerator([f.url for f in fakes[:k]], **FAST)
        results.append(gen.generate(prompts(30), sampling))
        assert sum(gen.last_run["done_by"].values()) == 30
        assert len(gen.last_run["done_by"]) == k  # every server took a share
    assert results[0] == results[1] == results[2]
    seeds = sorted(b["seed"] for f in fakes for b in f.gen_requests())
    assert seeds == sorted([42 + i for i in range(30)] * 3)


def test_endpoint_dying_mid_run_moves_work_to_the_other(servers):
    a, b = servers(latency=0.02), servers(latency=0.02)

    def die_after_three(body):
        if a.gen_count >= 3:
            a.dead = True  # drops this and every later connection
        return None
    a.hook = die_after_three
    gen = OpenAIGenerator([a.url, b.url], concurrency=2, **FAST)
    out = gen.generate(prompts(20), Sampling(seed=1))
    assert [c.texts[0].split(" |")[0] for c in out] == [f"question {i}" for i in range(20)]
    assert gen.endpoints[0] in gen.last_run["dead"]
    assert "RemoteProtocolError" in gen.last_run["dead"][gen.endpoints[0]]
    assert gen.last_run["done_by"][gen.endpoints[1]] >= 18
    reference = OpenAIGenerator(b.url, **FAST).generate(prompts(20), Sampling(seed=1))
    assert out == reference


def test_all_endpoints_dying_reports_each_and_keeps_partial(servers):
    a, b = servers(), servers()

    def die_from_question_4(body):
        if int(body["messages"][-1]["content"].split()[-1]) >= 4:
            a.dead = b.dead = True
        return None
    a.hook = b.hook = die_from_question_4
    gen = OpenAIGenerator([a.url, b.url], concurrency=1, **FAST)
    with pytest.raises(AllEndpointsFailedError) as info:
        gen.generate(prompts(10), Sampling())
    err = info.value
    assert "all 2 endpoints failed" in str(err) and all(ep in str(err) for ep in gen.endpoints)
    assert "4 attempts" in str(err)
    done = [i for i, c in enumerate(err.partial) if c is not None]
    assert done and all(i < 4 for i in done)
    assert all(err.partial[i].texts[0].startswith(f"question {i} |") for i in done)


# -- token counting ------------------------------------------------------------------------------


def test_count_tokens_uses_tokenize_and_caches(servers):
    srv = servers()
    gen = OpenAIGenerator(srv.url, **FAST)
    p = prompts(1)[0]
    assert gen.count_tokens(p) == len("be brief question 0".split()) + 5
    assert gen.count_tokens(p) == len("be brief question 0".split()) + 5
    tok = [b for path, b, _ in srv.requests if path == "/tokenize"]
    assert len(tok) == 1 and tok[0]["messages"] == p and tok[0]["add_generation_prompt"] is True
    comp = OpenAIGenerator(srv.url, chat=False, **FAST)
    assert comp.count_tokens(p) == len(render_completion(p).split())


def test_count_tokens_falls_back_to_estimate(servers):
    srv = servers(tokenize=False)
    gen = OpenAIGenerator(srv.url, **FAST)
    p = prompts(1)[0]
    assert gen.count_tokens(p) == estimate_tokens(p) == (2 + 4) + (3 + 4) + 3
    assert gen.count_tokens(prompts(2)[1]) == estimate_tokens(prompts(2)[1])
    assert len([1 for path, *_ in srv.requests if path == "/tokenize"]) == 1  # 404 remembered


def test_one_off_calls_prefer_the_endpoint_that_answers(servers):
    srv, down = servers(), servers()
    down.dead = True  # accepts connections and drops them unanswered
    gen = OpenAIGenerator([down.url, srv.url], max_retries=2, backoff_s=0.01, max_backoff_s=0.05, timeout_s=5)
    assert gen.model_id == "fake-model"  # discovered on the second endpoint
    tried = down.httpd.accepted
    assert tried == 3  # discovery tried it first, with its retries
    assert gen.count_tokens(prompts(1)[0]) > 0
    assert down.httpd.accepted == tried and [p for p, *_ in srv.requests] == ["/v1/models", "/tokenize"]


def test_module_does_not_import_vllm():
    code = "import sys, generators.openai_backend; assert 'vllm' not in sys.modules, 'vllm imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
