"""A scripted generator for tests: no model, deterministic, records every call."""
from __future__ import annotations

import random
import time
from typing import Callable, Sequence

from generators.base import Completion, GenerationError, Prompt, Sampling, Score

Script = Callable[[Prompt, int, random.Random], str]
LogprobScript = Callable[[Prompt, list[str]], Sequence[float]]


def echo_script(prompt: Prompt, sample: int, rng: random.Random) -> str:
    return f"sample {sample}: {prompt[-1]['content'][:40]}"


def uniform_logprobs(prompt: Prompt, tokens: list[str]) -> list[float]:
    """Every target token gets logprob -1."""
    return [-1.0] * len(tokens)


class FakeGenerator:
    """Answers each prompt with ``script(prompt, sample_index, rng)``.

    ``rng`` is seeded from the batch seed and the prompt position, like an engine-level seed.
    ``fail_on_call`` makes the given call numbers (1-based) raise :class:`GenerationError`;
    ``latency_s`` sleeps per call, to model a real server.

    :meth:`score` splits a target into whitespace tokens and takes their logprobs from
    ``logprob_script(prompt, tokens)`` (one value per token); scoring calls are recorded in ``scored``.
    """

    def __init__(self, script: Script = echo_script, *, model_id: str = "fake", chat: bool = True,
                 max_model_len: int = 4096, fail_on_call: Sequence[int] = (), latency_s: float = 0.0,
                 logprob_script: LogprobScript = uniform_logprobs):
        self.script, self.model_id, self.chat, self.max_model_len = script, model_id, chat, max_model_len
        self.fail_on_call, self.latency_s = set(fail_on_call), latency_s
        self.logprob_script = logprob_script
        self.calls: list[tuple[list[Prompt], Sampling]] = []
        self.scored: list[tuple[list[Prompt], list[str]]] = []

    def count_tokens(self, prompt: Prompt) -> int:
        return sum(len(m["content"].split()) + 4 for m in prompt)

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[Completion]:
        self.calls.append((list(prompts), sampling))
        if len(self.calls) in self.fail_on_call:
            raise GenerationError(f"scripted failure on call {len(self.calls)}")
        if self.latency_s:
            time.sleep(self.latency_s)
        out = []
        for i, prompt in enumerate(prompts):
            rng = random.Random(f"{sampling.seed}/{i}")
            texts = tuple(self.script(prompt, s, rng) for s in range(sampling.n))
            out.append(Completion(texts=texts, prompt_tokens=self.count_tokens(prompt),
                                  completion_tokens=tuple(len(t.split()) for t in texts),
                                  finish_reasons=("stop",) * len(texts)))
        return out

    def score(self, prompts: Sequence[Prompt], targets: Sequence[str]) -> list[Score]:
        if len(prompts) != len(targets):
            raise ValueError(f"score got {len(prompts)} prompts and {len(targets)} targets")
        self.scored.append((list(prompts), list(targets)))
        out = []
        for prompt, target in zip(prompts, targets):
            tokens = target.split()
            values = tuple(float(v) for v in self.logprob_script(prompt, tokens))
            if len(values) != len(tokens):
                raise ValueError(f"logprob_script gave {len(values)} logprobs for {len(tokens)} tokens")
            out.append(Score(values))
        return out
