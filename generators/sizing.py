"""Size the engine's KV cache and context from the model and the machine (pure, no vllm import).

A many-shot cell shares one long prefix across its questions, so the KV cache must hold a few full
contexts at once, not one: :data:`FULL_CONTEXTS` sequences of ``max_model_len`` tokens. The cache is
capped at :data:`MEMORY_SHARE` of the memory available when the engine starts; when even one full
context does not fit under that cap, ``max_model_len`` is lowered to what does (and the log says so),
instead of the engine failing at start-up.

Knobs, strongest first: ``kv_cache_gib=`` / ``max_model_len=`` arguments of the backend,
``MANYSHOT_KV_CACHE_GIB`` / ``MANYSHOT_MAX_MODEL_LEN``, then vLLM's own ``VLLM_CPU_KVCACHE_SPACE`` (CPU).
On GPUs vLLM sizes the cache from ``gpu_memory_utilization`` unless a size is given; see the README.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Mapping

GIB = 1 << 30
FULL_CONTEXTS = 8
MEMORY_SHARE = 0.4
MIN_GIB = 1

DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "half": 2, "float32": 4, "float": 4, "fp8": 1}


@dataclass(frozen=True)
class CachePlan:
    kv_cache_gib: int
    max_model_len: int
    bytes_per_token: int
    reason: str


def bytes_per_token(config: Mapping[str, Any], dtype: str = "bfloat16") -> int:
    """KV bytes one token occupies: keys and values for every layer and KV head."""
    layers = config["num_hidden_layers"]
    heads = config.get("num_attention_heads")
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    return 2 * layers * kv_heads * head_dim * DTYPE_BYTES.get(str(dtype).lower(), 2)


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (Linux), else total physical memory."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def plan_cache(config: Mapping[str, Any], *, max_model_len: int | None, available: int,
               kv_cache_gib: float | None = None, dtype: str = "bfloat16") -> CachePlan:
    """The KV cache (whole GiB, as vLLM's CPU backend takes it) and the context length to start with.

    ``max_model_len`` None means the model's own ``max_position_embeddings``. An explicit
    ``kv_cache_gib`` is kept as given; the context is then lowered only if one sequence cannot fit.
    """
    per_token = bytes_per_token(config, dtype)
    length = int(max_model_len or config.get("max_position_embeddings") or 4096)
    cap = max(MIN_GIB, math.floor(available * MEMORY_SHARE / GIB))
    if kv_cache_gib is not None:
        gib, why = max(MIN_GIB, round(float(kv_cache_gib))), "as configured"
    else:
        want = math.ceil(per_token * length * FULL_CONTEXTS / GIB)
        gib = min(max(MIN_GIB, want), cap)
        why = (f"{FULL_CONTEXTS} contexts of {length} tokens" if gib == want or want < MIN_GIB
               else f"capped at {MEMORY_SHARE:.0%} of {available / GIB:.1f} GiB available")
    fits = gib * GIB // per_token
    if fits < length:
        why += f"; max_model_len lowered from {length} to {fits} tokens, all that fit in {gib} GiB"
        length = int(fits)
    return CachePlan(kv_cache_gib=gib, max_model_len=length, bytes_per_token=per_token, reason=why)


def from_environment(name: str) -> float | None:
    value = os.environ.get(name)
    if value in (None, ""):
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number") from None
