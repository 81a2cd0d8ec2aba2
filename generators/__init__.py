"""Everything that talks to a model. ``load_generator`` picks the backend for a model name."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from generators.base import (BadRequestError, Completion, GenerationError, Generator, Prompt, Sampling,
                             prompt_hash)

__all__ = ["BadRequestError", "Completion", "GenerationError", "Generator", "GeneratorConfig", "Prompt", "Sampling",
           "check_loadable", "load_generator", "prompt_hash"]

_CACHE: dict[tuple, Generator] = {}


def load_generator(model: str = "embedded", *, endpoints: Sequence[str] = (), seed: int = 0,
                   max_model_len: int | None = None, chat: bool = True) -> Generator:
    """A generator for ``model``: an OpenAI-compatible server when ``endpoints`` are given (``chat``
    picks chat or plain completions requests), else an in-process vLLM engine. Generators are cached
    per process, so a flow loads its model once."""
    key = (model, tuple(endpoints), seed, max_model_len, chat)
    if key not in _CACHE:
        if endpoints:
            from generators.openai_backend import OpenAIGenerator

            _CACHE[key] = OpenAIGenerator(list(endpoints), model=None if model == "embedded" else model,
                                          chat=chat, max_model_len=max_model_len)
        else:
            from generators.vllm_backend import VLLMGenerator

            _CACHE[key] = VLLMGenerator(model, seed=seed,
                                        **({"max_model_len": max_model_len} if max_model_len else {}))
    return _CACHE[key]


@dataclass(frozen=True)
class GeneratorConfig:
    """Which generator to use, as a picklable value: resolved where it is used (a Dask worker, a scheduled job),
    once per process, since :func:`load_generator` caches."""

    model: str = "embedded"
    endpoints: tuple[str, ...] = ()
    seed: int = 0
    max_model_len: int | None = None
    chat: bool = True

    def resolve(self) -> Generator:
        return load_generator(self.model, endpoints=self.endpoints, seed=self.seed, max_model_len=self.max_model_len,
                              chat=self.chat)


def check_loadable(model: str, endpoints: Sequence[str] = ()) -> None:
    """Raise :class:`generators.models.ModelNotAvailableError` at once when :func:`load_generator` could not load
    ``model`` (:func:`generators.model_check.check_model`); a server's model, or one this process has loaded
    already, needs no check."""
    if endpoints or any(key[0] == model for key in _CACHE):
        return
    from generators.model_check import check_model

    check_model(model)
