"""Request bodies, response parsing, seeds and token estimates of :mod:`generators.openai_backend`.

See that module's docstring for how sampling fields map to requests and how token counts are derived.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from generators.base import Completion, Prompt, Sampling
from generators.openai_transport import Retryable
from generators.prompts import render_completion

UNKNOWN_TOKENS = -1
"""Token count used when the server did not report one."""


def request_seed(seed: int, index: int) -> int:
    """The seed sent with the prompt at batch position ``index``: independent of sharding and timing."""
    return seed + index


def sample_seed(seed: int, sample: int) -> int:
    """Seed of sample ``sample`` when the ``n`` samples are sent as ``n`` single requests."""
    return (seed * 1_000_003 + sample) % (2**31 - 1)


def estimate_tokens(text_or_prompt: str | Prompt) -> int:
    """Crude token estimate when the server cannot tokenize: ceil(chars/4) (+4 per message, +3)."""
    if isinstance(text_or_prompt, str):
        return math.ceil(len(text_or_prompt) / 4) + 3
    return sum(math.ceil(len(m.get("content") or "") / 4) + 4 for m in text_or_prompt) + 3


def build_body(prompt: Prompt, sampling: Sampling, n: int, seed: int, *, model: str, chat: bool,
               vllm: bool, extra_body: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of one chat or completions request."""
    body: dict[str, Any] = {"model": model, "n": n, "temperature": sampling.temperature,
                            "top_p": sampling.top_p, "max_tokens": sampling.max_tokens, "seed": seed}
    if sampling.stop:
        body["stop"] = list(sampling.stop)
    if chat:
        body["messages"] = list(prompt)
        if sampling.logprobs is not None:
            body["logprobs"] = True
            body["top_logprobs"] = sampling.logprobs
    else:
        body["prompt"] = render_completion(prompt)
        if sampling.logprobs is not None:
            body["logprobs"] = sampling.logprobs
    if vllm:
        body["return_token_ids"] = True
    body.update(extra_body)
    return body


def _split_total(counts: list[int | None], texts: list[str], total: Any, n: int) -> list[int]:
    """Fill unknown per-sample counts from ``usage.completion_tokens`` (split by text length)."""
    if isinstance(total, int) and n == 1:
        return [total]
    if not isinstance(total, int):
        return [UNKNOWN_TOKENS if c is None else c for c in counts]
    known = sum(c for c in counts if c is not None)
    rest = max(0, total - known)
    unknown = [i for i, c in enumerate(counts) if c is None]
    weights = [len(texts[i]) + 1 for i in unknown]
    shares = [rest * w // sum(weights) for w in weights]
    for j in range(rest - sum(shares)):
        shares[j % len(shares)] += 1
    share_of = dict(zip(unknown, shares))
    return [share_of[i] if c is None else c for i, c in enumerate(counts)]


def parse_completion(data: dict[str, Any], n: int, want_logprobs: bool, *, chat: bool) -> Completion:
    """A :class:`Completion` from a chat or completions response; :class:`Retryable` if malformed."""
    choices = data.get("choices")
    if not isinstance(choices, list) or len(choices) != n:
        got = len(choices) if isinstance(choices, list) else choices
        raise Retryable(f"expected {n} choices, got {got}")
    choices = sorted(choices, key=lambda c: c.get("index", 0))
    texts, counts, finish, logprobs = [], [], [], []
    for c in choices:
        if chat:
            text = (c.get("message") or {}).get("content") or ""
            entries = (c.get("logprobs") or {}).get("content")
            token_lps = [e.get("logprob") for e in entries] if isinstance(entries, list) else None
        else:
            text = c.get("text") or ""
            token_lps = (c.get("logprobs") or {}).get("token_logprobs")
            token_lps = token_lps if isinstance(token_lps, list) else None
        texts.append(text)
        finish.append(str(c.get("finish_reason") or "unknown"))
        if isinstance(c.get("token_ids"), list):
            counts.append(len(c["token_ids"]))
        elif token_lps is not None:
            counts.append(len(token_lps))
        else:
            counts.append(None)
        if want_logprobs:
            vals = [v for v in token_lps or [] if isinstance(v, (int, float))]
            logprobs.append(float(sum(vals)) if token_lps is not None else None)
    usage = data.get("usage") or {}
    prompt_tokens = usage.get("prompt_tokens")
    if any(c is None for c in counts):
        counts = _split_total(counts, texts, usage.get("completion_tokens"), n)
    return Completion(texts=tuple(texts),
                      prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else UNKNOWN_TOKENS,
                      completion_tokens=tuple(counts), finish_reasons=tuple(finish),
                      logprobs=tuple(logprobs))


def join_samples(parts: Sequence[Completion], want_logprobs: bool) -> Completion:
    """One ``n``-sample :class:`Completion` from ``n`` single-sample ones."""
    return Completion(texts=tuple(p.texts[0] for p in parts), prompt_tokens=parts[0].prompt_tokens,
                      completion_tokens=tuple(p.completion_tokens[0] for p in parts),
                      finish_reasons=tuple(p.finish_reasons[0] for p in parts),
                      logprobs=tuple(p.logprobs[0] for p in parts) if want_logprobs else ())
