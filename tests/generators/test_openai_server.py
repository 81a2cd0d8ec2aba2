"""The OpenAI backend against a REAL vLLM OpenAI server (embedded-tiny model) on 127.0.0.1.

Starts ``python -m vllm.entrypoints.openai.api_server`` in its own process group, waits for
``/health``, generates in chat and completions mode, then SIGKILLs the server while a long
generation is in flight and checks that the run retries and then fails with a clear
GenerationError. The server is always killed in teardown. Run with ``-s`` to see the timings.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from generators.base import GenerationError, Sampling
from generators.openai_backend import AllEndpointsFailedError, OpenAIGenerator

pytestmark = [pytest.mark.server, pytest.mark.engine, pytest.mark.timeout(300)]

MAX_MODEL_LEN = 2048
START_TIMEOUT_S = 180.0
TIMINGS: dict[str, float] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)  # the server and its engine-core child share the group
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("vllm", exc_type=ImportError)
    from generators.models import ModelNotAvailableError, resolve_model
    try:
        path = resolve_model("embedded-tiny").path
    except ModelNotAvailableError as e:
        pytest.skip(f"embedded-tiny not available: {e}")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm") / "server.log"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", path,
           "--served-model-name", "embedded-tiny", "--host", "127.0.0.1", "--port", str(port),
           "--enforce-eager", "--max-model-len", str(MAX_MODEL_LEN), "--max-num-seqs", "16",
           "--disable-log-stats"]
    log_file = open(log_path, "wb")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            if time.monotonic() - t0 > START_TIMEOUT_S:
                pytest.fail(f"vLLM server not healthy after {START_TIMEOUT_S:.0f}s:\n{log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        TIMINGS["server_start_s"] = time.monotonic() - t0
        print(f"\nvLLM server healthy after {TIMINGS['server_start_s']:.1f}s (port {port})")
        yield {"url": url + "/v1", "proc": proc, "log": log_path}
    finally:
        _kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.wait(timeout=15)
        _kill_group(proc)  # leftovers (engine core) in the group
        log_file.close()
        print(f"timings: {json.dumps({k: round(v, 3) for k, v in TIMINGS.items()})}")


PROMPTS = [[{"role": "system", "content": "Answer with one short sentence."},
            {"role": "user", "content": f"What is {a} + {b}?"}] for a, b in [(2, 3), (10, 7), (6, 6), (1, 9)]]


def test_discovery_and_tokenize(server):
    gen = OpenAIGenerator(server["url"], timeout_s=60)
    assert gen.model_id == "embedded-tiny" and gen.max_model_len == MAX_MODEL_LEN and gen.vllm
    n_chat = gen.count_tokens(PROMPTS[0])
    comp = OpenAIGenerator(server["url"], chat=False, timeout_s=60)
    n_text = comp.count_tokens(PROMPTS[0])
    assert 5 < n_text < n_chat < 200  # the chat template adds tokens


@pytest.mark.parametrize("chat", [True, False], ids=["chat", "completions"])
def test_generate_batch(server, chat):
    gen = OpenAIGenerator(server["url"], chat=chat, concurrency=4, timeout_s=60)
    sampling = Sampling(n=2, temperature=0.8, max_tokens=24, seed=7, stop=("\n\n",))
    t0 = time.monotonic()
    out = gen.generate(PROMPTS, sampling)
    TIMINGS[f"batch_{'chat' if chat else 'completions'}_4x2x24_s"] = time.monotonic() - t0
    assert len(out) == len(PROMPTS)
    for prompt, c in zip(PROMPTS, out):
        assert len(c.texts) == 2 and all(isinstance(t, str) for t in c.texts)
        assert all(0 < k <= 24 for k in c.completion_tokens)
        assert set(c.finish_reasons) <= {"stop", "length"}
        assert all("\n\n" not in t for t in c.texts)
        assert c.prompt_tokens == gen.count_tokens(prompt)  # usage agrees with /tokenize
    # per-request seeds reproduce samples. Only one request at a time here: on vLLM CPU the logits
    # (even greedy ones) depend on which requests share a batch, so concurrent runs may differ.
    # Sampled texts at temperature 0.8 were seen to differ in their last token between two serial runs (a
    # near-tie under bf16 prefix-cache numerics), so reproduction is checked greedily; seeds must still matter.
    serial = OpenAIGenerator(server["url"], chat=chat, concurrency=1, timeout_s=60)
    greedy = dataclasses.replace(sampling, n=1, temperature=0.0)
    first = serial.generate(PROMPTS, greedy)
    assert serial.generate(PROMPTS, greedy) == first
    sampled = serial.generate(PROMPTS, sampling)
    assert serial.generate(PROMPTS, dataclasses.replace(sampling, seed=8)) != sampled
    lp = gen.generate(PROMPTS[:1], Sampling(max_tokens=8, logprobs=1))[0]
    assert lp.logprobs[0] is not None and lp.logprobs[0] <= 0


def test_single_request_latency(server):
    gen = OpenAIGenerator(server["url"], timeout_s=60)
    gen.generate(PROMPTS[:1], Sampling(max_tokens=1))  # warm
    t0 = time.monotonic()
    for _ in range(3):
        gen.generate(PROMPTS[:1], Sampling(max_tokens=1))
    TIMINGS["request_latency_1_token_s"] = (time.monotonic() - t0) / 3
    t0 = time.monotonic()
    c = gen.generate(PROMPTS[:1], Sampling(max_tokens=64))[0]
    TIMINGS["decode_tokens_per_s"] = c.completion_tokens[0] / (time.monotonic() - t0)


def test_dead_second_endpoint_changes_nothing(server):
    dead = f"http://127.0.0.1:{_free_port()}/v1"
    sampling = Sampling(temperature=0.8, max_tokens=16, seed=3)
    # one request in flight at a time, so the server batches the same way in both runs
    one = OpenAIGenerator(server["url"], concurrency=1, timeout_s=60).generate(PROMPTS, sampling)
    gen = OpenAIGenerator([dead, server["url"]], model="embedded-tiny", max_model_len=MAX_MODEL_LEN,
                          concurrency=1, timeout_s=60, backoff_s=0.05, max_backoff_s=0.2)
    assert gen.generate(PROMPTS, sampling) == one
    assert list(gen.last_run["dead"]) == [gen.endpoints[0]]
    assert gen.last_run["done_by"] == {gen.endpoints[1]: len(PROMPTS)}


def test_server_killed_mid_run_fails_clearly(server):
    """Runs last: kills the module's server while a long generation is in flight."""
    long_gen = OpenAIGenerator(server["url"], timeout_s=120, max_retries=3, backoff_s=0.25, max_backoff_s=1.0,
                               extra_body={"ignore_eos": True})
    short_gen = OpenAIGenerator(server["url"], concurrency=4, timeout_s=60)
    long_prompt = [{"role": "user", "content": "Write a very long story about a lighthouse."}]
    # ~1900 tokens: about 30 s on 2 cores, so it is still running when the server dies
    long_sampling = Sampling(temperature=0.0, max_tokens=MAX_MODEL_LEN - 100, seed=1)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = long_gen.generate([long_prompt], long_sampling)
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = e
        outcome["ended"] = time.monotonic()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    time.sleep(1.0)
    # results returned while the long generation runs, before the kill
    before = short_gen.generate(PROMPTS, Sampling(temperature=0.0, max_tokens=8, seed=1))
    snapshot = [(c.texts, c.prompt_tokens, c.completion_tokens) for c in before]
    time.sleep(1.0)
    assert worker.is_alive(), f"the long generation finished too early: {outcome}"
    killed = time.monotonic()
    _kill_group(server["proc"])
    server["proc"].wait(timeout=30)
    worker.join(timeout=60)
    assert not worker.is_alive(), "generate did not give up after the server died"
    TIMINGS["failure_reported_after_kill_s"] = outcome["ended"] - killed

    err = outcome.get("error")
    assert isinstance(err, AllEndpointsFailedError), outcome
    msg = str(err)
    print(f"\nerror after kill: {msg}")
    assert gen_endpoint(long_gen) in msg and "4 attempts" in msg and "last error" in msg
    assert long_gen.last_run["retries"][gen_endpoint(long_gen)] >= 3
    assert outcome["ended"] - killed < 20
    # the batch returned before the kill is intact
    assert "0/1 prompts completed" in msg and err.partial == [None]
    assert len(before) == len(PROMPTS) and all(c.texts[0] for c in before)
    assert [(c.texts, c.prompt_tokens, c.completion_tokens) for c in before] == snapshot
    with pytest.raises(GenerationError, match="ConnectError"):
        OpenAIGenerator(server["url"], model="embedded-tiny", max_model_len=MAX_MODEL_LEN, max_retries=1,
                        backoff_s=0.05).generate(PROMPTS[:1], Sampling())


def gen_endpoint(gen: OpenAIGenerator) -> str:
    return gen.endpoints[0]
