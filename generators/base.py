"""The one interface every model backend implements: batch in, batch out.

A prompt is a list of chat messages (``{"role": ..., "content": ...}``). Chat models render it with
their own chat template; completion (base) models render it with :func:`generators.prompts.render_completion`.
Backends never build prompts and never judge answers.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Protocol, Sequence, runtime_checkable

Message = dict[str, str]
Prompt = list[Message]


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters for one batch. ``seed`` seeds the whole engine call (see the vLLM backend)."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int = 0
    logprobs: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class Completion:
    """All ``n`` samples for one prompt, in sample order."""

    texts: tuple[str, ...]
    prompt_tokens: int
    completion_tokens: tuple[int, ...]
    finish_reasons: tuple[str, ...] = ()
    logprobs: tuple[float | None, ...] = field(default=())


@dataclass(frozen=True)
class Score:
    """How likely a model finds a target continuation of one prompt: the natural-log probability of
    each target token given the prompt and the target tokens before it.

    ``cached_tokens`` is how many prompt tokens the engine read from its prefix cache (0 when unknown);
    ``recomputed`` tells that the first pass had the target inside the cached part, so it was scored
    again with cache reads off.
    """

    token_logprobs: tuple[float, ...]
    cached_tokens: int = 0
    recomputed: bool = False

    @property
    def tokens(self) -> int:
        return len(self.token_logprobs)

    @property
    def sum_nll(self) -> float:
        return -sum(self.token_logprobs)

    @property
    def mean_nll(self) -> float:
        """Mean per-token negative log-likelihood (nats); NaN for an empty target."""
        return self.sum_nll / self.tokens if self.tokens else float("nan")


class GenerationError(RuntimeError):
    """A model call failed in a way a retry may fix (dead server, timeout, 5xx)."""


class BadRequestError(ValueError):
    """A model call was rejected for its content (4xx, prompt too long); retrying will not help."""


@runtime_checkable
class Generator(Protocol):
    """A model that completes batches of prompts.

    ``model_id`` names the weights for provenance; ``max_model_len`` is the context size in tokens;
    ``chat`` tells whether prompts are rendered with a chat template.
    """

    model_id: str
    max_model_len: int
    chat: bool

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[Completion]:
        """Return one :class:`Completion` per prompt, in prompt order."""
        ...

    def count_tokens(self, prompt: Prompt) -> int:
        """Tokens the rendered prompt occupies (including the generation prompt)."""
        ...

    def score(self, prompts: Sequence[Prompt], targets: Sequence[str]) -> list[Score]:
        """One :class:`Score` per (prompt, target) pair, in order: the logprobs of ``target`` as the
        model's reply to ``prompt`` (after the generation prompt). Backends that cannot score raise
        ``NotImplementedError`` naming themselves."""
        ...


def prompt_hash(prompt: Prompt) -> str:
    """A short stable hash of a prompt's messages."""
    blob = json.dumps(prompt, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
