"""A :class:`~generators.base.Generator` for OpenAI-compatible model servers (``vllm serve`` and friends).

One :class:`OpenAIGenerator` talks to one or more endpoints serving the same model. ``generate``
sends one HTTP request per prompt (all ``n`` samples in one request) and

* bounds the requests in flight per endpoint (``concurrency``), also across concurrent ``generate`` calls;
* shards the prompts over the endpoints through a shared work queue, so a faster server takes more;
  the output order is the prompt order;
* retries connection errors, timeouts, 408/429 and 5xx on the same endpoint with exponential backoff
  and jitter (drawn from an RNG seeded with ``retry_seed``); after ``max_retries`` retries of one
  request the endpoint is declared dead for the rest of the call and its unfinished prompts move to
  the live endpoints; when no endpoint is left the call raises :class:`AllEndpointsFailedError`
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
request slot), so ``generate`` works from any thread, with or without a running event loop.
"""
from __future__ import annotations

import collections
import logging
import math
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import httpx

from generators.base import BadRequestError, Completion, GenerationError, Prompt, Sampling, prompt_hash
from generators.prompts import render_completion

log = logging.getLogger(__name__)

UNKNOWN_TOKENS = -1
"""Token count used when the server did not report one."""

DEFAULT_ENDPOINT = "http://127.0.0.1:8000/v1"
_RETRYABLE_STATUS = {408, 429}
_NO_ROUTE_STATUS = {404, 405, 501}


class OpenAIBadRequestError(BadRequestError):
    """A 4xx answer: the request itself was rejected. Retrying will not help."""

    def __init__(self, endpoint: str, status: int, message: str, path: str = ""):
        self.endpoint, self.status, self.message, self.path = endpoint, status, message, path
        super().__init__(f"{endpoint}{path} rejected the request: HTTP {status}: {message}")


class AllEndpointsFailedError(GenerationError):
    """Every endpoint failed after its retries. ``partial[i]`` is the finished result of prompt ``i`` or None."""

    def __init__(self, message: str, endpoint_errors: Mapping[str, str],
                 partial: Sequence[Completion | None] = ()):
        super().__init__(message)
        self.endpoint_errors = dict(endpoint_errors)
        self.partial = list(partial)


class _Retryable(Exception):
    """One failed attempt that a retry may fix (connection error, timeout, 408/429/5xx, garbage body)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class _EndpointGone(Exception):
    """The endpoint was declared dead (or the run ended) while a request was pending on it."""


def request_seed(seed: int, index: int) -> int:
    """The seed sent with the prompt at batch position ``index``: independent of sharding and timing."""
    return seed + index


def _sample_seed(seed: int, sample: int) -> int:
    """Seed of sample ``sample`` when the ``n`` samples are sent as ``n`` single requests."""
    return (seed * 1_000_003 + sample) % (2**31 - 1)


def estimate_tokens(text_or_prompt: str | Prompt) -> int:
    """Crude token estimate when the server cannot tokenize: ceil(chars/4) (+4 per message, +3)."""
    if isinstance(text_or_prompt, str):
        return math.ceil(len(text_or_prompt) / 4) + 3
    return sum(math.ceil(len(m.get("content") or "") / 4) + 4 for m in text_or_prompt) + 3


def _api_root(url: str) -> str:
    """``http://h:p`` from ``http://h:p``, ``http://h:p/`` or ``http://h:p/v1``."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _server_message(response: httpx.Response) -> str:
    """The error message of an OpenAI- or vLLM-style error body, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:1000]
        if isinstance(err, str):
            return err[:1000]
        if body.get("message"):
            return str(body["message"])[:1000]
        if body.get("detail"):
            return str(body["detail"])[:1000]
    return str(body)[:500]


def _describe(exc: BaseException) -> str:
    text = str(exc) or repr(exc)
    return text if isinstance(exc, _Retryable) else f"{type(exc).__name__}: {text}"


@dataclass
class _Run:
    """Shared state of one ``generate`` call: the work queue, the results, the live endpoints."""

    prompts: Sequence[Prompt]
    sampling: Sampling
    endpoints: Sequence[str]
    results: list[Completion | None] = field(init=False)
    pending: collections.deque[int] = field(init=False)
    remaining: int = field(init=False)
    error: BaseException | None = None
    dead: dict[str, str] = field(default_factory=dict)
    done_by: collections.Counter[str] = field(default_factory=collections.Counter)
    attempts: collections.Counter[str] = field(default_factory=collections.Counter)
    retries: collections.Counter[str] = field(default_factory=collections.Counter)
    cond: threading.Condition = field(default_factory=threading.Condition)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.results = [None] * len(self.prompts)
        self.pending = collections.deque(range(len(self.prompts)))
        self.remaining = len(self.prompts)

    @property
    def over(self) -> bool:
        return self.error is not None or self.remaining == 0

    def take(self, endpoint: str) -> int | None:
        with self.cond:
            while True:
                if self.over or endpoint in self.dead:
                    return None
                if self.pending:
                    return self.pending.popleft()
                self.cond.wait()

    def finish(self, index: int, completion: Completion, endpoint: str) -> None:
        with self.cond:
            if self.results[index] is None:
                self.results[index] = completion
                self.remaining -= 1
                self.done_by[endpoint] += 1
            if self.remaining == 0:
                self.stop.set()
            self.cond.notify_all()

    def requeue(self, index: int) -> None:
        with self.cond:
            self.pending.appendleft(index)
            self.cond.notify_all()

    def fail(self, error: BaseException) -> None:
        with self.cond:
            if self.error is None:
                self.error = error
            self.stop.set()
            self.cond.notify_all()

    def mark_dead(self, endpoint: str, reason: str) -> None:
        with self.cond:
            if endpoint in self.dead:
                return
            self.dead[endpoint] = reason
            log.warning("endpoint %s declared dead: %s", endpoint, reason)
            if len(self.dead) == len(self.endpoints) and self.error is None and self.remaining:
                done = len(self.prompts) - self.remaining
                if len(self.endpoints) == 1:
                    msg = f"endpoint {endpoint} failed: {reason}"
                else:
                    msg = f"all {len(self.endpoints)} endpoints failed: " + "; ".join(
                        f"{ep}: {why}" for ep, why in self.dead.items())
                msg += f" ({done}/{len(self.prompts)} prompts completed)"
                self.error = AllEndpointsFailedError(msg, self.dead, self.results)
                self.stop.set()
            self.cond.notify_all()


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
    switched on per endpoint when it answers 4xx to ``n > 1`` but accepts ``n == 1``).

    The constructor calls ``GET /v1/models`` only when ``model`` or ``max_model_len`` is missing.
    """

    def __init__(self, endpoints: str | Sequence[str] | None = None, *, model: str | None = None,
                 chat: bool = True, max_model_len: int | None = None, api_key: str | None = None,
                 concurrency: int = 8, timeout_s: float = 300.0, connect_timeout_s: float = 10.0,
                 max_retries: int = 3, backoff_s: float = 0.5, max_backoff_s: float = 8.0,
                 retry_seed: int = 0, vllm: bool | None = None,
                 extra_body: Mapping[str, Any] | None = None, split_n: bool = False):
        if endpoints is None:
            endpoints = os.environ.get("OPENAI_BASE_URL") or DEFAULT_ENDPOINT
        if isinstance(endpoints, str):
            endpoints = [endpoints]
        roots = [_api_root(e) for e in endpoints]
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
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._rng = random.Random(retry_seed)
        self._rng_lock = threading.Lock()
        self._clients: dict[str, httpx.Client] = {}
        self._clients_lock = threading.Lock()
        self._slots = {ep: threading.BoundedSemaphore(concurrency) for ep in roots}
        self._preferred = list(roots)  # order in which one-off calls (models, tokenize) try endpoints
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

    # -- HTTP ------------------------------------------------------------------------------------

    def _client(self, endpoint: str) -> httpx.Client:
        with self._clients_lock:
            client = self._clients.get(endpoint)
            if client is None:
                limits = httpx.Limits(max_connections=self.concurrency + 2,
                                      max_keepalive_connections=self.concurrency)
                client = httpx.Client(base_url=endpoint, headers=self._headers, timeout=self.timeout,
                                      limits=limits, trust_env=False)
                self._clients[endpoint] = client
            return client

    def close(self) -> None:
        with self._clients_lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()

    def __enter__(self) -> OpenAIGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, endpoint: str, method: str, path: str, body: Mapping[str, Any] | None = None
                 ) -> dict[str, Any]:
        """One attempt. Raises :class:`_Retryable` or :class:`OpenAIBadRequestError`."""
        with self._slots[endpoint]:
            try:
                response = self._client(endpoint).request(method, path, json=body)
            except httpx.TransportError as e:  # connect/read/write errors, timeouts, dropped connections
                raise _Retryable(f"{type(e).__name__}: {e or 'no detail'}") from e
        status = response.status_code
        if status >= 500 or status in _RETRYABLE_STATUS:
            retry_after = None
            if status in (429, 503):
                try:
                    retry_after = float(response.headers.get("retry-after", ""))
                except ValueError:
                    pass
            raise _Retryable(f"HTTP {status}: {_server_message(response)}", retry_after)
        if status >= 400:
            raise OpenAIBadRequestError(endpoint, status, _server_message(response), path)
        try:
            data = response.json()
        except ValueError as e:
            raise _Retryable(f"HTTP {status} with a body that is not JSON: {response.text[:200]!r}") from e
        if not isinstance(data, dict):
            raise _Retryable(f"HTTP {status} with an unexpected body: {str(data)[:200]}")
        return data

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        with self._rng_lock:
            u = self._rng.random()
        delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)) * (0.5 + 0.5 * u)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff_s))
        return delay

    def _with_retries(self, endpoint: str, fn, run: _Run | None = None):
        """Call ``fn()`` up to ``max_retries + 1`` times on ``endpoint``.

        Raises :class:`_EndpointGone` when ``run`` ends or declares the endpoint dead meanwhile, and
        a GenerationError (after marking the endpoint dead in ``run``) when the attempts run out.
        """
        attempt = 0
        while True:
            if run is not None and (run.over or endpoint in run.dead):
                raise _EndpointGone(endpoint)
            attempt += 1
            if run is not None:
                run.attempts[endpoint] += 1
            try:
                return fn()
            except _Retryable as e:
                if attempt > self.max_retries:
                    reason = f"{attempt} attempts, last error: {_describe(e)}"
                    if run is not None:
                        run.mark_dead(endpoint, reason)
                    raise GenerationError(f"endpoint {endpoint} failed: {reason}") from e
                delay = self._backoff(attempt, e.retry_after)
                log.info("%s: attempt %d failed (%s); retrying in %.2fs", endpoint, attempt, _describe(e), delay)
                if run is not None:
                    run.retries[endpoint] += 1
                    if run.stop.wait(delay):
                        raise _EndpointGone(endpoint) from e
                else:
                    time.sleep(delay)

    def _first_endpoint(self, what: str, fn):
        """``fn(endpoint)`` with retries on each endpoint in turn; GenerationError when all fail."""
        errors: list[str] = []
        for ep in list(self._preferred):
            try:
                return self._with_retries(ep, lambda: fn(ep))
            except GenerationError as e:
                errors.append(str(e))
                with self._clients_lock:  # try the endpoints that answered first next time
                    if ep in self._preferred:
                        self._preferred.remove(ep)
                        self._preferred.append(ep)
        raise GenerationError(f"{what}: " + "; ".join(errors))

    # -- discovery, tokens -----------------------------------------------------------------------

    def _discover(self, model: str | None) -> dict[str, Any]:
        data = self._first_endpoint("GET /v1/models failed", lambda ep: self._request(ep, "GET", "/v1/models"))
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
                return int(self._request(ep, "POST", "/tokenize", body)["count"])
            except OpenAIBadRequestError as e:
                if e.status not in _NO_ROUTE_STATUS:
                    raise
                log.warning("%s has no /tokenize (HTTP %d); estimating token counts", ep, e.status)
                self._no_tokenize.add(ep)
                return None
            except (KeyError, TypeError, ValueError) as e:
                raise _Retryable(f"/tokenize answered without a count: {e!r}") from e

        count = self._first_endpoint("POST /tokenize failed", tokenize)
        if count is None:
            count = estimate_tokens(prompt if self.chat else render_completion(prompt))
        with self._token_lock:
            self._token_cache[key] = count
            while len(self._token_cache) > 8192:
                self._token_cache.popitem(last=False)
        return count

    # -- generation ------------------------------------------------------------------------------

    def _body(self, prompt: Prompt, sampling: Sampling, n: int, seed: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model_id, "n": n, "temperature": sampling.temperature,
                                "top_p": sampling.top_p, "max_tokens": sampling.max_tokens, "seed": seed}
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if self.chat:
            body["messages"] = list(prompt)
            if sampling.logprobs is not None:
                body["logprobs"] = True
                body["top_logprobs"] = sampling.logprobs
        else:
            body["prompt"] = render_completion(prompt)
            if sampling.logprobs is not None:
                body["logprobs"] = sampling.logprobs
        if self.vllm:
            body["return_token_ids"] = True
        body.update(self.extra_body)
        return body

    def _parse(self, data: dict[str, Any], n: int, want_logprobs: bool) -> Completion:
        choices = data.get("choices")
        if not isinstance(choices, list) or len(choices) != n:
            got = len(choices) if isinstance(choices, list) else choices
            raise _Retryable(f"expected {n} choices, got {got}")
        choices = sorted(choices, key=lambda c: c.get("index", 0))
        texts, counts, finish, logprobs = [], [], [], []
        for c in choices:
            if self.chat:
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
        total = usage.get("completion_tokens")
        if any(c is None for c in counts):
            if isinstance(total, int) and n == 1:
                counts = [total]
            elif isinstance(total, int):  # split the exact total over the samples by text length
                known = sum(c for c in counts if c is not None)
                rest = max(0, total - known)
                unknown = [i for i, c in enumerate(counts) if c is None]
                weights = [len(texts[i]) + 1 for i in unknown]
                shares = [rest * w // sum(weights) for w in weights]
                for j in range(rest - sum(shares)):
                    shares[j % len(shares)] += 1
                for i, s in zip(unknown, shares):
                    counts[i] = s
            else:
                counts = [UNKNOWN_TOKENS if c is None else c for c in counts]
        return Completion(texts=tuple(texts),
                          prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else UNKNOWN_TOKENS,
                          completion_tokens=tuple(counts), finish_reasons=tuple(finish),
                          logprobs=tuple(logprobs))

    def _complete(self, endpoint: str, prompt: Prompt, sampling: Sampling, seed: int, run: _Run) -> Completion:
        """All samples of one prompt from ``endpoint`` (one request, or ``n`` when splitting)."""
        path = "/v1/chat/completions" if self.chat else "/v1/completions"
        want_lp = sampling.logprobs is not None

        def one(n: int, s: int) -> Completion:
            body = self._body(prompt, sampling, n, s)
            return self._with_retries(endpoint, lambda: self._parse(
                self._request(endpoint, "POST", path, body), n, want_lp), run)

        n = sampling.n
        if n > 1 and not (self.split_n or endpoint in self._split_n_on):
            try:
                return one(n, seed)
            except OpenAIBadRequestError as e:
                first_error = e
            try:  # does the server accept the same request with n == 1?
                single = one(1, _sample_seed(seed, 0))
            except OpenAIBadRequestError:
                raise first_error from None
            log.warning("%s rejects n=%d (%s); sending one request per sample", endpoint, n, first_error.message)
            self._split_n_on.add(endpoint)
            parts = [single] + [one(1, _sample_seed(seed, s)) for s in range(1, n)]
        elif n > 1:
            parts = [one(1, _sample_seed(seed, s)) for s in range(n)]
        else:
            return one(1, seed)
        return Completion(texts=tuple(p.texts[0] for p in parts), prompt_tokens=parts[0].prompt_tokens,
                          completion_tokens=tuple(p.completion_tokens[0] for p in parts),
                          finish_reasons=tuple(p.finish_reasons[0] for p in parts),
                          logprobs=tuple(p.logprobs[0] for p in parts) if want_lp else ())

    def _worker(self, run: _Run, endpoint: str) -> None:
        while (index := run.take(endpoint)) is not None:
            try:
                seed = request_seed(run.sampling.seed, index)
                completion = self._complete(endpoint, run.prompts[index], run.sampling, seed, run)
            except _EndpointGone:
                run.requeue(index)
                return
            except GenerationError:  # retries exhausted: run.mark_dead already recorded it
                run.requeue(index)
                return
            except BaseException as e:  # 4xx or a bug: the whole call fails
                run.fail(e)
                return
            run.finish(index, completion, endpoint)

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[Completion]:
        """One :class:`Completion` per prompt, in prompt order (see the module docstring)."""
        if sampling.n < 1:
            raise ValueError(f"sampling.n must be >= 1, got {sampling.n}")
        prompts = list(prompts)
        if not prompts:
            return []
        run = _Run(prompts, sampling, self.endpoints)
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
            self.last_run = {"wall_s": time.perf_counter() - t0, "prompts": len(prompts),
                             "done_by": dict(run.done_by), "attempts": dict(run.attempts),
                             "retries": dict(run.retries), "dead": dict(run.dead)}
        if run.error is not None:
            # Workers still waiting on a response finish in the background; their results are dropped.
            raise run.error
        for t in threads:  # all work is done: the workers are exiting
            t.join(timeout=1.0)
        return [c for c in run.results if c is not None]
