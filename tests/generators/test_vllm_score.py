"""``VLLMGenerator.score`` on the real engine with ``embedded-tiny``: prefix-cache reads give the same NLL
as scoring without them, and a target inside the cached part is recomputed rather than read as garbage.

The engine runs in float32, where a cached prefix and a recomputed one agreed to within 2.2e-6 nats/token
(AMD EPYC, AVX512-BF16, no AMX; AMX has no float32 arithmetic, so float32 does not take its kernels). In
bfloat16, the engine's default, the gap is machine-dependent: 0 on that EPYC, 8.4e-3 on a CPU with AMX and
AVX512-BF16 (0.40996 cached vs 0.41835 recomputed), above this test's 1e-3."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("vllm")

from conftest import tiny_engine  # noqa: E402

pytestmark = pytest.mark.engine

PREFIX = [{"role": "system", "content": "Solve the problem. End with 'The answer is N'."}]
for q, a in [("Tom has 3 apples and buys 4 more. How many apples does he have?",
              "He has 3 + 4 = 7 apples.\nThe answer is 7"),
             ("A box holds 6 eggs. How many eggs are in 5 boxes?", "5 boxes hold 5 * 6 = 30 eggs.\nThe answer is 30"),
             ("Sara reads 12 pages a day. How many pages does she read in a week?",
              "A week has 7 days, so she reads 12 * 7 = 84 pages.\nThe answer is 84")] * 3:
    PREFIX += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
QUESTIONS = ["Ben has 10 marbles and loses 3. How many are left?",
             "A car drives 60 km per hour for 2 hours. How far does it go?",
             "There are 4 rows of 8 chairs. How many chairs are there?"]
TARGETS = ["He has 10 - 3 = 7 marbles left.\nThe answer is 7",
           "It goes 60 * 2 = 120 km.\nThe answer is 120",
           "There are 4 * 8 = 32 chairs.\nThe answer is 32"]


@pytest.fixture(scope="module")
def gen():
    yield from tiny_engine(dtype="float32")


def test_cache_read_nll_equals_no_cache_nll(gen):
    from generators.base import Generator

    assert isinstance(gen, Generator)
    prompts = [PREFIX + [{"role": "user", "content": q}] for q in QUESTIONS]
    warm = PREFIX + [{"role": "user", "content": "How many legs do 3 cats have?"}]
    gen.score([warm], ["3 * 4 = 12 legs.\nThe answer is 12"])  # the shared prefix is now in the cache
    cached = gen.score(prompts, TARGETS)
    reference = gen.score(prompts, TARGETS, read_cache=False)  # after: it writes whole prompts to the cache
    prefix_tokens = len(gen.encode(PREFIX + [{"role": "user", "content": ""}])) - 10
    for ref, got, target in zip(reference, cached, TARGETS):
        assert ref.tokens == got.tokens == len(gen.tokenizer(target, add_special_tokens=False)["input_ids"])
        assert ref.cached_tokens == 0 and not ref.recomputed
        assert got.cached_tokens > prefix_tokens // 2 and not got.recomputed  # the prefix came from the cache
        assert 0 < ref.mean_nll < 10
        assert got.mean_nll == pytest.approx(ref.mean_nll, abs=1e-3)
    assert len({round(s.mean_nll, 3) for s in reference}) == 3  # distinct targets, distinct numbers


def test_a_target_inside_the_cached_part_is_recomputed(gen):
    block = gen.engine.llm_engine.vllm_config.cache_config.block_size
    prompt = [{"role": "user", "content": "List the numbers from 1 to 200."}]
    target = ", ".join(str(i) for i in range(1, 201))
    assert len(gen.tokenizer(target, add_special_tokens=False)["input_ids"]) > 2 * block
    reference, = gen.score([prompt], [target], read_cache=False)
    gen.score([prompt], [target])  # prompt and target are now cached, past the target's first token
    again, = gen.score([prompt], [target])
    assert again.recomputed and again.cached_tokens == 0
    assert again.tokens == reference.tokens
    assert again.mean_nll == pytest.approx(reference.mean_nll, abs=1e-3)
