"""The real vLLM engine with the ``embedded-tiny`` model (SmolLM2-135M-Instruct), loaded once per module.

Converts the model into the cache on first run (about 20 s), then about 10 s to load the engine.
"""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("vllm")

from generators.base import BadRequestError, Sampling  # noqa: E402
from conftest import tiny_engine  # noqa: E402

pytestmark = pytest.mark.engine

PROMPTS = [
    [{"role": "user", "content": "Count from 1 to 20, separated by commas."}],
    [{"role": "user", "content": "Write a haiku about the sea."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+3?"}],
]


@pytest.fixture(scope="module")
def gen():
    yield from tiny_engine()


def test_protocol_and_render(gen):
    from generators.base import Generator

    assert isinstance(gen, Generator)
    assert gen.chat is True and gen.max_model_len == 1024
    assert gen.model_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    text = gen.render(PROMPTS[2])
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert text.endswith("<|im_start|>assistant\n")
    counts = [gen.count_tokens(p) for p in PROMPTS]
    assert counts[2] == len(gen.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert len(set(counts)) == 3  # distinct, so the order check below means something


def test_generate_batch_with_samples(gen):
    sampling = Sampling(n=2, temperature=0.9, max_tokens=24, seed=1, logprobs=0)
    out = gen.generate(PROMPTS, sampling)
    assert len(out) == 3
    assert [c.prompt_tokens for c in out] == [gen.count_tokens(p) for p in PROMPTS]  # order kept
    for c in out:
        assert len(c.texts) == len(c.completion_tokens) == len(c.finish_reasons) == len(c.logprobs) == 2
        assert all(0 < n <= 24 for n in c.completion_tokens)
        assert set(c.finish_reasons) <= {"stop", "length"}
        assert all(isinstance(lp, float) and lp <= 0 for lp in c.logprobs)
    assert gen.generate([], sampling) == []


def test_same_seed_same_texts(gen):
    sampling = Sampling(n=2, temperature=1.0, max_tokens=24, seed=123)
    first = gen.generate(PROMPTS, sampling)
    gen.generate(PROMPTS[:1], Sampling(temperature=1.0, max_tokens=8, seed=5))  # disturb the RNG in between
    second = gen.generate(PROMPTS, sampling)
    assert [c.texts for c in first] == [c.texts for c in second]
    other = gen.generate(PROMPTS, Sampling(n=2, temperature=1.0, max_tokens=24, seed=124))
    assert [c.texts for c in other] != [c.texts for c in first]
    assert first[0].logprobs == ()  # not asked for


def test_stop_sequences(gen):
    free = gen.generate(PROMPTS[:1], Sampling(max_tokens=60))[0]
    assert "5" in free.texts[0]
    stopped = gen.generate(PROMPTS[:1], Sampling(max_tokens=60, stop=("5",)))[0]
    assert "5" not in stopped.texts[0]
    assert stopped.finish_reasons == ("stop",)
    assert free.texts[0].startswith(stopped.texts[0])


def test_too_long_prompt_is_a_bad_request(gen):
    long_prompt = [{"role": "user", "content": "word " * 1500}]
    with pytest.raises(BadRequestError, match=r"prompt 1 has \d+ tokens; max_model_len is 1024"):
        gen.generate([PROMPTS[0], long_prompt], Sampling(max_tokens=8))
    # A prompt that fits but leaves less room than max_tokens is cut to fit, not refused.
    near = [{"role": "user", "content": "word " * 980}]
    n = gen.count_tokens(near)
    assert 1000 < n < 1024
    out = gen.generate([near], Sampling(max_tokens=100, temperature=0.0))[0]
    assert out.prompt_tokens == n
    assert out.prompt_tokens + out.completion_tokens[0] <= 1024


def test_worker_threads_share_the_engine(gen):
    """Prefect runs tasks in worker threads: calls from several threads are serialised and stay seeded."""
    from concurrent.futures import ThreadPoolExecutor

    sampling = Sampling(n=1, temperature=1.0, max_tokens=8, seed=9)
    expected = gen.generate(PROMPTS, sampling)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: gen.generate(PROMPTS, sampling), range(2)))
    assert all([c.texts for c in r] == [c.texts for c in expected] for r in results)
