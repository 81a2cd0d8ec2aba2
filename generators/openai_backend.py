"""A :class:`~generators.base.Generator` for OpenAI-compatible model servers (``vllm serve`` and friends).

One :class:`OpenAIGenerator` talks to one or more endpoints serving the same model. ``generate``
sends one HTTP request per prompt (all ``n`` samples in one request) and

* bounds the requests in flight per endpoint (``concurrency``), also across concurrent ``generate`` calls;
* routes by prefix (:mod:`generators.openai_routing`): prompts whose shared part (all messages but the last)
  agrees in its first ``route_prefix_chars`` characters form a group that one endpoint serves, so a long shot
  prefix is computed once, not once per server; groups are spread over the endpoints (least pinned work
  first) and keep their endpoint from call to call. Prompts with a shorter shared part go through a shared
  work queue, so a faster server takes more. The output order is the prompt order;
* retries connection errors, timeouts, 408/429 and 5xx on the same endpoint with exponential backoff
  and jitter (drawn from an RNG seeded with ``retry_seed``); after ``max_retries`` retries of one
  request the endpoint is declared dead for the rest of the call and its unfinished prompts (its groups
  whole) move to the live endpoints; when no endpoint is left the call raises :class:`AllEndpointsFailedError`
  (a :class:`~generators.base.GenerationError`) naming every endpoint, its attempts and last error,
  and carrying the results that did finish in ``.partial``;
* raises :class:`OpenAIBadRequestError` (a :class:`~generators.base.BadRequestError`) at once on any
  other 4xx, with the endpoint, the status and the server's message; retrying will not help.

Sampling: ``n``, ``temperature``, ``top_p``, ``max_tokens``, ``stop`` and ``logprobs`` map to the
request fields of the same name (chat: ``logprobs=true, top_logprobs=k``). The prompt at position
``i`` of a batch is sent with ``seed = sampling.seed + i`` (:func:`request_seed`), so results do not
depend on how many endpoints share the work or in which order requests finish. (The request stream
is identical; a real server's numbers can still depend on which requests it batches together: on
vLLM CPU even greedy outputs change with batch composition, so bit-identical outputs across runs
need the same server-side batching, e.g. ``concurrency=1``.)

``last_run`` describes the latest ``generate`` call: ``wall_s``, ``prompts``, per endpoint the prompts it
answered (``done_by``), ``attempts``, ``retries``, why it was declared ``dead``, the prefix groups it ended up
with (``groups``), the ``prompt_tokens`` and ``cached_tokens`` of its responses' usage (cached tokens only where
the server reports them), and how many prompts were ``pinned`` to a group.

Endpoint health is per ``generate`` call: an endpoint declared dead is tried afresh by the next call
(its first retries then cost about ``backoff_s * (2**max_retries - 1)`` seconds while the live
endpoints carry on). Environment proxy settings are ignored (``trust_env=False``), so
``http://127.0.0.1`` endpoints never go through an ``HTTP_PROXY``.

Modes: ``chat=True`` posts the messages to ``/v1/chat/completions`` (the server applies the chat
template); ``chat=False`` (base models, or to force completions mode) posts
:func:`generators.prompts.render_completion` text to ``/v1/completions``.

Token counts: ``Completion.prompt_tokens`` is ``usage.prompt_tokens``. Per-sample
``completion_tokens`` come, in order of preference, from the returned token ids (vLLM
``return_token_ids``, requested automatically when the server identifies as vLLM), from the number
of logprob entries, from ``usage.completion_tokens`` when ``n == 1``, and otherwise from
``usage.completion_tokens`` split over the samples in proportion to their text length (so the sum
stays exact). A count the server did not report at all is ``-1`` (:data:`UNKNOWN_TOKENS`).

``Completion.logprobs`` (only when ``sampling.logprobs`` is not None) holds each sample's cumulative
log probability: the sum of its sampled tokens' logprobs, ``None`` when the server returned none.

``count_tokens`` asks the server's ``POST /tokenize`` (vLLM; with the messages and
``add_generation_prompt`` in chat mode, the rendered text otherwise) and caches the answer. When
the server has no such route (404/405/501) it falls back to a crude estimate,
:func:`estimate_tokens`: one token per 4 characters of content (rounded up) plus 4 per message plus 3.

This module must not import vllm: it only speaks HTTP (httpx, synchronous, one worker thread per
request slot), so ``generate`` works from any thread, with or without a running event loop. HTTP,
retries and the work queue live in :mod:`generators.openai_transport`; request bodies and response
parsing in :mod:`generators.openai_protocol`.
"""
from __future__ import annotations

import collections
import logging
import os
import threading
import time
from typing import Any, Mapping, Sequence

import httpx

from generators.base import Completion, GenerationError, Prompt, Sampling, Score, prompt_hash
from generators.openai_protocol import (UNKNOWN_TOKENS, build_body, estimate_tokens, join_samples,
                                        parse_completion, request_seed, sample_seed)
from generators.openai_transport import (NO_ROUTE_STATUS, AllEndpointsFailedError, EndpointGone,
                                         EndpointPool, OpenAIBadRequestError, Retryable, Run, api_root)
from generators.openai_routing import DEFAULT_ROUTE_CHARS, Router
from generators.prompts import render_completion

__all__ = ["DEFAULT_ENDPOINT", "UNKNOWN_TOKENS", "AllEndpointsFailedError", "OpenAIBadRequestError",
           "OpenAIGenerator", "estimate_tokens", "request_seed"]

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "http://127.0.0.1:8000/v1"


class OpenAIGenerator:
    """Generate through OpenAI-compatible HTTP endpoints serving one model (see the module docstring).

    ``endpoints``: base URLs (``http://host:port`` or ``http://host:port/v1``), default
    ``$OPENAI_BASE_URL`` or ``http://127.0.0.1:8000/v1``. ``model``: the served model name, default
    the first model of ``GET /v1/models``. ``max_model_len``: overrides the ``max_model_len`` the
    server reports in ``/v1/models``; required when the server reports none. ``api_key``: sent as a
    Bearer token, default ``$OPENAI_API_KEY``. ``concurrency``: requests in flight per endpoint.
    ``timeout_s``: per-request read timeout; ``connect_timeout_s``: per-request connect timeout.
    ``max_retries``: retries of one request on one endpoint before that endpoint is declared dead;
    backoff before retry k is ``min(max_backoff_s, backoff_s * 2**(k-1))`` scaled by a uniform
    factor in [0.5, 1) from ``random.Random(retry_seed)`` (a 429/503 ``Retry-After`` is honoured up
    to ``max_backoff_s``). ``vllm``: send vLLM-only fields (``return_token_ids``); None detects vLLM
    from ``/v1/models`` (``owned_by == "vllm"``) when discovery runs. ``extra_body``: extra request
    fields. ``split_n``: send ``n`` single-sample requests instead of one request with ``n`` (also
    switched on per endpoint when it answers 4xx to ``n > 1`` but accepts ``n == 1``). ``route_prefix_chars``:
    the leading characters of a prompt's shared part that key its group (default ``$MANYSHOT_ROUTE_PREFIX_CHARS``
    or 4096, about 1,000 tokens); 0 turns prefix routing off (every prompt through the shared queue).

    The constructor calls ``GET /v1/models`` only when ``model`` or ``max_model_len`` is missing.
    """

    def __init__(self, endpoints: str | Sequence[str] | None = None, *, model: str | None = None,
                 chat: bool = True, max_model_len: int | None = None, api_key: str | None = None,
                 concurrency: int = 8, timeout_s: float = 300.0, connect_timeout_s: float = 10.0,
                 max_retries: int = 3, backoff_s: float = 0.5, max_backoff_s: float = 8.0,
                 retry_seed: int = 0, vllm: bool | None = None,
                 extra_body: Mapping[str, Any] | None = None, split_n: bool = False,
                 route_prefix_chars: int | None = None):
        if endpoints is None:
            endpoints = os.environ.get("OPENAI_BASE_URL") or DEFAULT_ENDPOINT
        if isinstance(endpoints, str):
            endpoints = [endpoints]
        roots = [api_root(e) for e in endpoints]
        if not roots:
            raise ValueError("OpenAIGenerator needs at least one endpoint")
        if len(set(roots)) != len(roots):
            raise ValueError(f"duplicate endpoints: {roots}")
        if concurrency < 1 or max_retries < 0:
            raise ValueError("concurrency must be >= 1 and max_retries >= 0")
        self.endpoints: list[str] = roots
        self.chat = chat
        self.concurrency, self.max_retries = concurrency, max_retries
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.timeout = httpx.Timeout(timeout_s, connect=min(connect_timeout_s, timeout_s))
        self.extra_body = dict(extra_body or {})
        self.split_n = split_n
        self._split_n_on: set[str] = set()
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._pool = EndpointPool(roots, headers=headers, timeout=self.timeout, concurrency=concurrency,
                                  max_retries=max_retries, backoff_s=backoff_s, max_backoff_s=max_backoff_s,
                                  retry_seed=retry_seed)
        if route_prefix_chars is None:
            route_prefix_chars = int(os.environ.get("MANYSHOT_ROUTE_PREFIX_CHARS") or DEFAULT_ROUTE_CHARS)
        self.router = Router(roots, route_prefix_chars)
        self._no_tokenize: set[str] = set()
        self._token_cache: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._token_lock = threading.Lock()
        self.last_run: dict[str, Any] = {}
        self.vllm = bool(vllm)
        self.server_max_model_len: int | None = None
        card: dict[str, Any] = {}
        if model is None or max_model_len is None:
            card = self._discover(model)
            self.server_max_model_len = card.get("max_model_len")
            if vllm is None:
                self.vllm = card.get("owned_by") == "vllm"
        self.model_id: str = model or str(card["id"])
        if max_model_len is None:
            max_model_len = self.server_max_model_len
        if max_model_len is None:
            raise ValueError(f"{self.endpoints[0]} does not report max_model_len for {self.model_id!r}; "
                             "pass max_model_len=")
        self.max_model_len: int = int(max_model_len)

    def __repr__(self) -> str:
        return (f"OpenAIGenerator(model_id={self.model_id!r}, endpoints={self.endpoints}, chat={self.chat}, "
                f"max_model_len={self.max_model_len})")

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> OpenAIGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- discovery, tokens -----------------------------------------------------------------------

    def _discover(self, model: str | None) -> dict[str, Any]:
        data = self._pool.first_endpoint("GET /v1/models failed",
                                         lambda ep: self._pool.request(ep, "GET", "/v1/models"))
        cards = [c for c in data.get("data") or [] if isinstance(c, dict) and c.get("id")]
        if model is None:
            if not cards:
                raise GenerationError(f"GET {self.endpoints[0]}/v1/models lists no model: {data}")
            if len(cards) > 1:
                log.warning("%s serves %d models; using %r", self.endpoints[0], len(cards), cards[0]["id"])
            return cards[0]
        for c in cards:
            if c["id"] == model:
                return c
        log.warning("model %r not listed by /v1/models (%s)", model, [c["id"] for c in cards])
        return {"id": model}

    def count_tokens(self, prompt: Prompt) -> int:
        key = prompt_hash(prompt)
        with self._token_lock:
            if key in self._token_cache:
                self._token_cache.move_to_end(key)
                return self._token_cache[key]
        if self.chat:
            body: dict[str, Any] = {"model": self.model_id, "messages": list(prompt), "add_generation_prompt": True}
        else:
            body = {"model": self.model_id, "prompt": render_completion(prompt)}

        def tokenize(ep: str) -> int | None:
            if ep in self._no_tokenize:
                return None
            try:
                return int(self._pool.request(ep, "POST", "/tokenize", body)["count"])
            except OpenAIBadRequestError as e:
                if e.status not in NO_ROUTE_STATUS:
                    raise
                log.warning("%s has no /tokenize (HTTP %d); estimating token counts", ep, e.status)
                self._no_tokenize.add(ep)
                return None
            except (KeyError, TypeError, ValueError) as e:
                raise Retryable(f"/tokenize answered without a count: {e!r}") from e

        count = self._pool.first_endpoint("POST /tokenize failed", tokenize)
        if count is None:
            count = estimate_tokens(prompt if self.chat else render_completion(prompt))
        with self._token_lock:
            self._token_cache[key] = count
            while len(self._token_cache) > 8192:
                self._token_cache.popitem(last=False)
        return count

    # -- generation ------------------------------------------------------------------------------

    def _complete(self, endpoint: str, prompt: Prompt, sampling: Sampling, seed: int, run: Run) -> Completion:
        """All samples of one prompt from ``endpoint`` (one request, or ``n`` when splitting)."""
        path = "/v1/chat/completions" if self.chat else "/v1/completions"
        want_lp = sampling.logprobs is not None

        def one(n: int, s: int) -> Completion:
            body = build_body(prompt, sampling, n, s, model=self.model_id, chat=self.chat, vllm=self.vllm,
                              extra_body=self.extra_body)

            def attempt() -> Completion:
                data = self._pool.request(endpoint, "POST", path, body)
                completion = parse_completion(data, n, want_lp, chat=self.chat)
                run.count_usage(endpoint, data.get("usage"))
                return completion
            return self._pool.with_retries(endpoint, attempt, run)

        n = sampling.n
        if n > 1 and not (self.split_n or endpoint in self._split_n_on):
            try:
                return one(n, seed)
            except OpenAIBadRequestError as e:
                first_error = e
            try:  # does the server accept the same request with n == 1?
                single = one(1, sample_seed(seed, 0))
            except OpenAIBadRequestError:
                raise first_error from None
            log.warning("%s rejects n=%d (%s); sending one request per sample", endpoint, n, first_error.message)
            self._split_n_on.add(endpoint)
            parts = [single] + [one(1, sample_seed(seed, s)) for s in range(1, n)]
        elif n > 1:
            parts = [one(1, sample_seed(seed, s)) for s in range(n)]
        else:
            return one(1, seed)
        return join_samples(parts, want_lp)

    def _worker(self, run: Run, endpoint: str) -> None:
        while (index := run.take(endpoint)) is not None:
            try:
                seed = request_seed(run.sampling.seed, index)
                completion = self._complete(endpoint, run.prompts[index], run.sampling, seed, run)
            except EndpointGone:
                run.requeue(index)
                return
            except GenerationError:  # retries exhausted: run.mark_dead already recorded it
                run.requeue(index)
                return
            except BaseException as e:  # 4xx or a bug: the whole call fails
                run.fail(e)
                return
            run.finish(index, completion, endpoint)

    def score(self, prompts: Sequence[Prompt], targets: Sequence[str]) -> list[Score]:
        raise NotImplementedError(
            "the OpenAI-compatible backend (OpenAIGenerator) cannot score targets yet: use the in-process vLLM "
            "engine (no --endpoint) for NLL analyses")

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[Completion]:
        """One :class:`Completion` per prompt, in prompt order (see the module docstring)."""
        if sampling.n < 1:
            raise ValueError(f"sampling.n must be >= 1, got {sampling.n}")
        prompts = list(prompts)
        if not prompts:
            return []
        keys = self.router.keys(prompts)
        run = Run(prompts, sampling, self.endpoints, keys, self.router)
        t0 = time.perf_counter()
        per_endpoint = min(self.concurrency, len(prompts))
        threads = [threading.Thread(target=self._worker, args=(run, ep), daemon=True,
                                    name=f"openai-{i}-{j}")
                   for i, ep in enumerate(self.endpoints) for j in range(per_endpoint)]
        for t in threads:
            t.start()
        try:
            with run.cond:
                while not run.over:
                    run.cond.wait()
        except BaseException as e:  # e.g. KeyboardInterrupt: stop the workers
            run.fail(e)
            raise
        finally:
            run.release()
            self.last_run = {"wall_s": time.perf_counter() - t0, "prompts": len(prompts),
                             "done_by": dict(run.done_by), "attempts": dict(run.attempts),
                             "retries": dict(run.retries), "dead": dict(run.dead),
                             "groups": dict(collections.Counter(run.home.values())),
                             "pinned": sum(k is not None for k in keys),
                             "prompt_tokens": dict(run.prompt_tokens), "cached_tokens": dict(run.cached_tokens)}
        if run.error is not None:
            # Workers still waiting on a response finish in the background; their results are dropped.
            raise run.error
        for t in threads:  # all work is done: the workers are exiting
            t.join(timeout=1.0)
        return [c for c in run.results if c is not None]
