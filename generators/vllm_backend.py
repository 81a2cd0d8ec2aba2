"""An in-process vLLM engine behind the :class:`~generators.base.Generator` protocol.

This is the only module of the project that imports ``vllm`` (lazily, inside :class:`VLLMGenerator`).

Engine settings, chosen so the engine works inside pytest, scripts without a ``__main__`` guard and
Prefect worker threads:

* ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (set unless already set): the engine core runs in this process,
  and on CPU the worker too (vLLM keeps the uni-process executor then), so nothing is spawned.
* On CPU: ``enforce_eager=True``; KV cache and ``max_model_len`` sized from the model and the machine
  by :mod:`generators.sizing` (``kv_cache_gib``, ``MANYSHOT_KV_CACHE_GIB`` or ``VLLM_CPU_KVCACHE_SPACE``
  override the cache size; ``max_model_len`` or ``MANYSHOT_MAX_MODEL_LEN`` the context;
  ``MANYSHOT_BLOCK_SIZE`` the KV cache block, :data:`CPU_BLOCK_SIZE` otherwise; ``MANYSHOT_DTYPE`` the dtype
  when the backend's ``dtype`` is ``auto``).
* ``MANYSHOT_TENSOR_PARALLEL``: vLLM's ``tensor_parallel_size`` (a model split over that many GPUs).
* ``HF_HUB_OFFLINE=1`` is set for the embedded models (they are local directories).

Seeding: a per-request ``SamplingParams(seed=...)`` crashes the CPU engine ("CPU Generator does not
use offset"), so seeds act at engine level on every backend alike: before each :meth:`generate` call
the worker's torch RNG is reseeded with ``Sampling.seed``. The same prompts with the same sampling and
seed therefore give the same texts on every call, whatever ran before. Samples of one prompt and the
prompts of one batch draw from that one stream, so a prompt's samples depend on the rest of its batch.
In-process the worker shares this process's torch RNG: :meth:`generate` reseeds ``torch``'s global RNG.

Scoring (:meth:`VLLMGenerator.score`): each request is the token ids of the rendered prompt
(:meth:`~VLLMGenerator.encode`, generation prompt included) followed by the target's ids tokenized on
their own (no special tokens), so the target span is exact; the boundary is the end of the generation
prompt (``<|im_start|>assistant\n`` for chat models), where a reply starts with a fresh token, and no
end-of-turn token is appended. It asks for ``prompt_logprobs=0`` with ``max_tokens=1``. vLLM would then
turn prefix-cache reads off for the request (``skip_reading_prefix_cache`` defaults to True with prompt
logprobs: measured on CPU, K=16, 30 problems, 315 s); the backend keeps them on
(``skip_reading_prefix_cache=False``, ``detokenize=False``: same NLL within 4e-4 in 32.5 s). The
logprob rows of cached positions are then garbage: the row of token ``i`` comes from the hidden state
at ``i - 1``, so a target starting at ``s`` is valid only when ``num_cached_tokens < s``. Requests that
fail that check are scored again with cache reads off (``Score.recomputed``).
"""
from __future__ import annotations

import gc
import logging
import os
import random
import threading
import time
from dataclasses import replace
from typing import Any, Sequence

from generators import sizing
from generators.base import BadRequestError, Completion, GenerationError, Prompt, Sampling, Score
from generators.models import EMBEDDED, ModelSpec, resolve_model

log = logging.getLogger(__name__)

# KV cache block on CPU, where vLLM's default is 128 tokens. Prefix caching reuses whole blocks only, so a
# many-shot cell recomputes up to a block of the shared prefix per question; with 32 the long-prefix
# benchmark computes 1.03x the minimum prefill against 1.13x with 128, at the same speed
# (bench/README.md, "eval_prefix.py, long prefix").
CPU_BLOCK_SIZE = 32


def _reseed_worker(worker: Any, seed: int) -> None:
    """Runs inside each vLLM worker: reseed the torch RNG (CPU and all GPUs) that unseeded sampling uses."""
    import torch

    torch.manual_seed(seed)


def reseed(llm: Any, seed: int) -> None:
    """Reseed the sampling RNG of every worker of a ``vllm.LLM``, as :meth:`VLLMGenerator.generate` does before
    each batch (benchmarks use it to drive a raw engine the same way)."""
    try:
        llm.collective_rpc(_reseed_worker, args=(seed,))
    except Exception as e:  # e.g. a multiprocess engine core that refuses to pickle functions
        raise GenerationError(f"could not reseed the vLLM workers ({e}); run the engine in-process "
                              "(VLLM_ENABLE_V1_MULTIPROCESSING=0)") from e


def context_length(asked: int | None, model_default: int | None) -> int | None:
    """The engine's ``max_model_len``: the argument, else ``MANYSHOT_MAX_MODEL_LEN`` (``--max-model-len``), else the
    model's own default (the embedded models name theirs), else None (vLLM's: the model config's)."""
    value = asked or sizing.from_environment("MANYSHOT_MAX_MODEL_LEN") or model_default
    return int(value) if value else None


class VLLMGenerator:
    """A vLLM ``LLM`` engine for one model, kept alive across :meth:`generate` calls.

    ``model`` is a name for :func:`generators.models.resolve_model` (``embedded``, ``embedded-tiny``, an
    HF model id or a local directory). ``seed`` seeds the engine at start. ``kv_cache_gib`` sizes the
    KV cache (CPU default: :func:`generators.sizing.plan_cache`; GPU default: vLLM's memory fraction).
    ``dtype`` is the compute and KV cache dtype (``"auto"``: the model's, bfloat16 for the embedded models;
    ``"float32"`` is about half as fast on CPU but makes cache reads agree with recomputation to ~1e-6).
    Extra keyword arguments go to ``vllm.LLM``.
    """

    def __init__(self, model: str = "embedded", *, max_model_len: int | None = None, seed: int = 0,
                 enable_prefix_caching: bool = True, kv_cache_gib: float | None = None,
                 enforce_eager: bool | None = None, dtype: str = "auto", **engine_kwargs: Any):
        self.spec: ModelSpec = resolve_model(model)
        if model in EMBEDDED or self.spec.name in EMBEDDED:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        if os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0":
            # vLLM's CPU backend keeps a core free for a separate scheduler process; in-process there is
            # none, and on a 2-core machine that reservation halves throughput (measured 48 -> 112 tok/s).
            os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        self.model_id = self.spec.model_id
        self.seed = seed
        self.cache_plan: sizing.CachePlan | None = None  # set on CPU, where the project sizes the KV cache
        self._lock = threading.Lock()  # one engine call at a time (e.g. from several Prefect task threads)

        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(self.spec.path)
        self.chat = self.spec.chat if self.spec.chat is not None else bool(getattr(self.tokenizer, "chat_template", None))

        t0 = time.monotonic()
        self._llm = self._start_engine(context_length(max_model_len, self.spec.max_model_len), seed,
                                       enable_prefix_caching, kv_cache_gib, enforce_eager, dtype, engine_kwargs)
        self.load_seconds = time.monotonic() - t0
        self.max_model_len: int = self._llm.llm_engine.model_config.max_model_len
        log.info("vLLM engine for %s (%s) ready in %.1f s, max_model_len=%d", self.spec.name, self.model_id,
                 self.load_seconds, self.max_model_len)

    # ------------------------------------------------------------------------------------- engine

    def _start_engine(self, max_model_len, seed, enable_prefix_caching, kv_cache_gib, enforce_eager, dtype,
                      engine_kwargs):
        import numpy as np
        import vllm
        from vllm.platforms import current_platform

        on_cpu = current_platform.is_cpu()
        if dtype == "auto":
            dtype = os.environ.get("MANYSHOT_DTYPE") or dtype
        kwargs: dict[str, Any] = dict(model=self.spec.path, tokenizer=self.spec.path, seed=seed, dtype=dtype,
                                      enable_prefix_caching=enable_prefix_caching,
                                      enforce_eager=on_cpu if enforce_eager is None else enforce_eager)
        if kv_cache_gib is None:
            kv_cache_gib = sizing.from_environment("MANYSHOT_KV_CACHE_GIB")
        env_backup: dict[str, str | None] = {}
        if on_cpu:
            if kv_cache_gib is None:
                kv_cache_gib = sizing.from_environment("VLLM_CPU_KVCACHE_SPACE")
            plan = sizing.plan_cache(self._text_config(), max_model_len=max_model_len, kv_cache_gib=kv_cache_gib,
                                     available=sizing.available_bytes(), dtype=str(dtype if dtype != "auto" else "bfloat16"))
            log.info("KV cache %d GiB, max_model_len %d (%s)", plan.kv_cache_gib, plan.max_model_len, plan.reason)
            self.cache_plan = plan
            max_model_len = plan.max_model_len
            # vLLM's CPU platform reads the KV cache size (whole GiB) from this variable, overriding any argument.
            env_backup["VLLM_CPU_KVCACHE_SPACE"] = os.environ.get("VLLM_CPU_KVCACHE_SPACE")
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(plan.kv_cache_gib)
        elif kv_cache_gib is not None:
            kwargs["kv_cache_memory_bytes"] = int(kv_cache_gib * (1 << 30))
        if max_model_len:
            kwargs["max_model_len"] = int(max_model_len)
        block_size = sizing.from_environment("MANYSHOT_BLOCK_SIZE") or (CPU_BLOCK_SIZE if on_cpu else None)
        if block_size:
            kwargs["block_size"] = int(block_size)
        tensor_parallel = sizing.from_environment("MANYSHOT_TENSOR_PARALLEL")
        if tensor_parallel:
            kwargs["tensor_parallel_size"] = int(tensor_parallel)
        kwargs.update(engine_kwargs)
        # In-process, LLM(seed=...) reseeds this process's `random` and numpy: keep the caller's streams.
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            return vllm.LLM(**kwargs)
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
            for k, v in env_backup.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def _text_config(self) -> dict:
        """The language model's config (layers, KV heads, head size, context) as a dict."""
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(self.spec.path)
        return config.get_text_config().to_dict()

    def close(self) -> None:
        """Shut the engine down and free its memory. The generator is unusable afterwards."""
        with self._lock:
            llm, self._llm = getattr(self, "_llm", None), None
        if llm is None:
            return
        try:
            llm.llm_engine.engine_core.shutdown()
        except Exception:  # best effort
            log.debug("engine shutdown failed", exc_info=True)
        del llm
        try:
            from vllm.distributed.parallel_state import destroy_distributed_environment, destroy_model_parallel

            destroy_model_parallel()
            destroy_distributed_environment()
        except Exception:
            log.debug("distributed teardown failed", exc_info=True)
        gc.collect()

    def __enter__(self) -> "VLLMGenerator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------ prompts

    def render(self, prompt: Prompt) -> str:
        """The exact text the model sees: the chat template with the generation prompt, or, for base
        models, :func:`generators.prompts.render_completion`."""
        if self.chat:
            return self.tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)
        from generators.prompts import render_completion

        return render_completion(prompt)

    def encode(self, prompt: Prompt) -> list[int]:
        """Token ids of the rendered prompt, exactly as given to the engine."""
        text = self.render(prompt)
        # A chat template writes its own special tokens; a plain completion gets the tokenizer's (e.g. BOS).
        return list(self.tokenizer(text, add_special_tokens=not self.chat)["input_ids"])

    def count_tokens(self, prompt: Prompt) -> int:
        return len(self.encode(prompt))

    # --------------------------------------------------------------------------------- generation

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[Completion]:
        """One engine call for the whole batch; one :class:`Completion` per prompt, in prompt order.

        Raises :class:`BadRequestError` (before calling the engine) when a prompt leaves no room for
        a generated token. ``max_tokens`` is cut per prompt to what fits in ``max_model_len``.
        """
        if self._llm is None:
            raise GenerationError("the vLLM engine was closed")
        if not prompts:
            return []
        from vllm import SamplingParams
        from vllm.exceptions import VLLMClientError
        from vllm.inputs import TokensPrompt

        ids = [self.encode(p) for p in prompts]
        for i, toks in enumerate(ids):
            if len(toks) >= self.max_model_len:
                raise BadRequestError(
                    f"prompt {i} has {len(toks)} tokens; max_model_len is {self.max_model_len} "
                    f"(prompt plus at least one generated token must fit)")

        def params(max_tokens: int) -> SamplingParams:
            return SamplingParams(n=sampling.n, temperature=sampling.temperature, top_p=sampling.top_p,
                                  max_tokens=max_tokens, stop=list(sampling.stop) or None,
                                  logprobs=sampling.logprobs)

        limits = [min(sampling.max_tokens, self.max_model_len - len(t)) for t in ids]
        if all(m == sampling.max_tokens for m in limits):
            sp: SamplingParams | list[SamplingParams] = params(sampling.max_tokens)
        else:
            cache: dict[int, SamplingParams] = {}
            sp = [cache.setdefault(m, params(m)) for m in limits]

        with self._lock:
            if self._llm is None:
                raise GenerationError("the vLLM engine was closed")
            self._reseed(sampling.seed)
            try:
                outputs = self._llm.generate([TokensPrompt(prompt_token_ids=t) for t in ids], sp, use_tqdm=False)
            except (VLLMClientError, ValueError) as e:  # the request was refused
                raise BadRequestError(str(e)) from e
        if len(outputs) != len(ids):
            raise GenerationError(f"vLLM returned {len(outputs)} outputs for {len(ids)} prompts")

        result = []
        for toks, out in zip(ids, outputs):
            samples = sorted(out.outputs, key=lambda o: o.index)
            result.append(Completion(
                texts=tuple(o.text for o in samples),
                prompt_tokens=len(toks),
                completion_tokens=tuple(len(o.token_ids) for o in samples),
                finish_reasons=tuple(o.finish_reason or "" for o in samples),
                logprobs=tuple(o.cumulative_logprob for o in samples) if sampling.logprobs is not None else (),
            ))
        return result

    # ------------------------------------------------------------------------------------ scoring

    def score(self, prompts: Sequence[Prompt], targets: Sequence[str], *, read_cache: bool = True) -> list[Score]:
        """Logprobs of each target as the reply to its prompt; see the module docstring for how the
        prefix cache is used and guarded (``read_cache=False``: every request without cache reads, the
        slow reference). Raises :class:`BadRequestError` when a prompt plus its target and one generated
        token do not fit ``max_model_len``, or a target is empty."""
        if len(prompts) != len(targets):
            raise ValueError(f"score got {len(prompts)} prompts and {len(targets)} targets")
        requests = []
        for i, (prompt, target) in enumerate(zip(prompts, targets)):
            head = self.encode(prompt)
            tail = list(self.tokenizer(target, add_special_tokens=False)["input_ids"])
            if not tail:
                raise BadRequestError(f"score: target {i} is empty")
            if len(head) + len(tail) >= self.max_model_len:
                raise BadRequestError(f"score: prompt {i} ({len(head)} tokens) plus its target ({len(tail)} tokens) "
                                      f"leaves no room in max_model_len {self.max_model_len}")
            requests.append((head + tail, len(head)))
        if not requests:
            return []
        outputs = self._prompt_logprobs([ids for ids, _ in requests], read_cache=read_cache)
        scores: list[Score | None] = []
        for (ids, start), out in zip(requests, outputs):
            cached = int(out.num_cached_tokens or 0)
            scores.append(_span_score(out, ids, start, cached) if cached < start else None)
        stale = [i for i, s in enumerate(scores) if s is None]
        if stale:
            log.info("score: %d of %d targets started inside the prefix cache; recomputing them without cache "
                     "reads", len(stale), len(requests))
            again = self._prompt_logprobs([requests[i][0] for i in stale], read_cache=False)
            for i, out in zip(stale, again):
                ids, start = requests[i]
                scores[i] = replace(_span_score(out, ids, start, int(out.num_cached_tokens or 0)), recomputed=True)
        return scores

    def _prompt_logprobs(self, ids: list[list[int]], *, read_cache: bool) -> list[Any]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False,
                                skip_reading_prefix_cache=not read_cache)
        with self._lock:
            if self._llm is None:
                raise GenerationError("the vLLM engine was closed")
            outputs = self._llm.generate([TokensPrompt(prompt_token_ids=t) for t in ids], params, use_tqdm=False)
        if len(outputs) != len(ids):
            raise GenerationError(f"vLLM returned {len(outputs)} outputs for {len(ids)} scoring prompts")
        return outputs

    def _reseed(self, seed: int) -> None:
        reseed(self._llm, seed)

    @property
    def engine(self) -> Any:
        """The ``vllm.LLM`` this generator drives (for benchmarks that compare against raw engine calls)."""
        return self._llm


def _span_score(out: Any, ids: list[int], start: int, cached: int) -> Score:
    """The logprobs of ``ids[start:]`` from a request's prompt logprobs (one dict per position)."""
    rows = out.prompt_logprobs
    if rows is None or len(rows) != len(ids):
        raise GenerationError(f"vLLM returned {None if rows is None else len(rows)} prompt logprob rows for "
                              f"{len(ids)} prompt tokens")
    values = []
    for pos in range(start, len(ids)):
        entry = rows[pos].get(ids[pos]) if rows[pos] is not None else None
        if entry is None:
            raise GenerationError(f"vLLM returned no logprob for prompt token {pos} (id {ids[pos]})")
        values.append(float(entry.logprob))
    return Score(tuple(values), cached_tokens=cached)


__all__ = ["VLLMGenerator"]
