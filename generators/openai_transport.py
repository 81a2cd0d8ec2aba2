"""HTTP transport of :mod:`generators.openai_backend`: errors, the endpoint pool with retries and backoff,
and the work queues of one ``generate`` call (shared, and per endpoint for prefix groups).

Only httpx, synchronous; this module must not import vllm.
"""
from __future__ import annotations

import collections
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence, TypeVar

import httpx

from generators.base import BadRequestError, Completion, GenerationError, Prompt, Sampling
from generators.openai_routing import Router

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_STATUS = {408, 429}
NO_ROUTE_STATUS = {404, 405, 501}


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


class Retryable(Exception):
    """One failed attempt that a retry may fix (connection error, timeout, 408/429/5xx, garbage body)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class EndpointGone(Exception):
    """The endpoint was declared dead (or the run ended) while a request was pending on it."""


def api_root(url: str) -> str:
    """``http://h:p`` from ``http://h:p``, ``http://h:p/`` or ``http://h:p/v1``."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    return url[: -len("/v1")] if url.endswith("/v1") else url


def server_message(response: httpx.Response) -> str:
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


def describe(exc: BaseException) -> str:
    text = str(exc) or repr(exc)
    return text if isinstance(exc, Retryable) else f"{type(exc).__name__}: {text}"


@dataclass
class Run:
    """Shared state of one ``generate`` call: the work queues, the results, the live endpoints.

    ``keys[i]`` is prompt ``i``'s routing key (:mod:`generators.openai_routing`): prompts with a key are pinned,
    group by group, to the endpoint ``router`` places the group on, and only that endpoint takes them; prompts
    without one (and every prompt when ``keys`` is empty) wait in the shared queue any live endpoint takes from.
    When an endpoint is declared dead its groups are placed again among the live endpoints, unfinished prompts and
    all (requests still in flight there join them when they give up).
    """

    prompts: Sequence[Prompt]
    sampling: Sampling
    endpoints: Sequence[str]
    keys: Sequence[str | None] = ()
    router: Router | None = None
    results: list[Completion | None] = field(init=False)
    pending: collections.deque[int] = field(init=False)  # the shared queue
    pinned: dict[str, collections.deque[int]] = field(init=False)  # endpoint -> its groups' queued prompts
    home: dict[str, str] = field(init=False)  # routing key -> endpoint
    outstanding: collections.Counter[str] = field(init=False)  # routing key -> prompts not finished
    remaining: int = field(init=False)
    error: BaseException | None = None
    dead: dict[str, str] = field(default_factory=dict)
    done_by: collections.Counter[str] = field(default_factory=collections.Counter)
    attempts: collections.Counter[str] = field(default_factory=collections.Counter)
    retries: collections.Counter[str] = field(default_factory=collections.Counter)
    prompt_tokens: collections.Counter[str] = field(default_factory=collections.Counter)  # usage, per endpoint
    cached_tokens: collections.Counter[str] = field(default_factory=collections.Counter)  # where reported
    cond: threading.Condition = field(default_factory=threading.Condition)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        if self.keys and (len(self.keys) != len(self.prompts) or self.router is None):
            raise ValueError("Run needs one routing key per prompt and a router to place them")
        self.results = [None] * len(self.prompts)
        self.remaining = len(self.prompts)
        self.pinned = {ep: collections.deque() for ep in self.endpoints}
        self.home, self.outstanding = {}, collections.Counter()
        groups: dict[str, list[int]] = {}
        free = []
        for i, key in enumerate(self.keys or [None] * len(self.prompts)):
            (free if key is None else groups.setdefault(key, [])).append(i)
        self.pending = collections.deque(free)
        for key, members in sorted(groups.items(), key=lambda kv: -len(kv[1])):  # largest first: even spread
            self.outstanding[key] = len(members)
            self._place(key, members, list(self.endpoints))

    def _place(self, key: str, queued: Sequence[int], live: list[str]) -> None:
        assert self.router is not None
        self.home[key] = self.router.place(key, self.outstanding[key], live)
        self.pinned[self.home[key]].extend(queued)

    @property
    def over(self) -> bool:
        return self.error is not None or self.remaining == 0

    def take(self, endpoint: str) -> int | None:
        with self.cond:
            while True:
                if self.over or endpoint in self.dead:
                    return None
                if self.pinned[endpoint]:
                    return self.pinned[endpoint].popleft()
                if self.pending:
                    return self.pending.popleft()
                self.cond.wait()

    def finish(self, index: int, completion: Completion, endpoint: str) -> None:
        with self.cond:
            if self.results[index] is None:
                self.results[index] = completion
                self.remaining -= 1
                self.done_by[endpoint] += 1
                key = self.keys[index] if self.keys else None
                if key is not None and self.outstanding[key]:  # 0 once release() gave the load back
                    self.outstanding[key] -= 1
                    self.router.release(self.home[key])
            if self.remaining == 0:
                self.stop.set()
            self.cond.notify_all()

    def count_usage(self, endpoint: str, usage: Any) -> None:
        """Add a response's ``usage.prompt_tokens`` and ``usage.prompt_tokens_details.cached_tokens`` (vLLM reports
        the latter with ``--enable-prompt-tokens-details``) to ``endpoint``'s totals."""
        usage = usage if isinstance(usage, dict) else {}
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        with self.cond:
            if isinstance(usage.get("prompt_tokens"), int):
                self.prompt_tokens[endpoint] += usage["prompt_tokens"]
            if isinstance(cached, int):
                self.cached_tokens[endpoint] += cached

    def requeue(self, index: int) -> None:
        with self.cond:
            key = self.keys[index] if self.keys else None
            (self.pending if key is None else self.pinned[self.home[key]]).appendleft(index)
            self.cond.notify_all()

    def release(self) -> None:
        """Give the router back the load of the prompts this call leaves unfinished (when it failed)."""
        with self.cond:
            for key, left in self.outstanding.items():
                if left:
                    self.router.release(self.home[key], left)
                    self.outstanding[key] = 0

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
            elif self.error is None:
                self._move_groups(endpoint)
            self.cond.notify_all()

    def _move_groups(self, endpoint: str) -> None:
        """Place the dead ``endpoint``'s unfinished groups again among the live endpoints (under ``cond``)."""
        live = [ep for ep in self.endpoints if ep not in self.dead]
        queued = self.pinned[endpoint]
        self.pinned[endpoint] = collections.deque()
        moved = [key for key, ep in self.home.items() if ep == endpoint and self.outstanding[key]]
        for key in sorted(moved, key=lambda k: -self.outstanding[k]):
            self.router.release(endpoint, self.outstanding[key])
            self._place(key, [i for i in queued if self.keys[i] == key], live)
            log.warning("group %s (%d prompts) moved from dead %s to %s", key, self.outstanding[key], endpoint,
                        self.home[key])


class EndpointPool:
    """One httpx client (proxy settings ignored) and ``concurrency`` request slots per endpoint, with
    retries and jittered exponential backoff as documented on :class:`OpenAIGenerator`."""

    def __init__(self, endpoints: Sequence[str], *, headers: Mapping[str, str], timeout: httpx.Timeout,
                 concurrency: int, max_retries: int, backoff_s: float, max_backoff_s: float, retry_seed: int):
        self.concurrency, self.max_retries = concurrency, max_retries
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.timeout = timeout
        self._headers = dict(headers)
        self._rng = random.Random(retry_seed)
        self._rng_lock = threading.Lock()
        self._clients: dict[str, httpx.Client] = {}
        self._clients_lock = threading.Lock()
        self._slots = {ep: threading.BoundedSemaphore(concurrency) for ep in endpoints}
        self._preferred = list(endpoints)  # order in which one-off calls (models, tokenize) try endpoints

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

    def request(self, endpoint: str, method: str, path: str, body: Mapping[str, Any] | None = None
                ) -> dict[str, Any]:
        """One attempt. Raises :class:`Retryable` or :class:`OpenAIBadRequestError`."""
        with self._slots[endpoint]:
            try:
                response = self._client(endpoint).request(method, path, json=body)
            except httpx.TransportError as e:  # connect/read/write errors, timeouts, dropped connections
                raise Retryable(f"{type(e).__name__}: {e or 'no detail'}") from e
        status = response.status_code
        if status >= 500 or status in RETRYABLE_STATUS:
            retry_after = None
            if status in (429, 503):
                try:
                    retry_after = float(response.headers.get("retry-after", ""))
                except ValueError:
                    pass
            raise Retryable(f"HTTP {status}: {server_message(response)}", retry_after)
        if status >= 400:
            raise OpenAIBadRequestError(endpoint, status, server_message(response), path)
        try:
            data = response.json()
        except ValueError as e:
            raise Retryable(f"HTTP {status} with a body that is not JSON: {response.text[:200]!r}") from e
        if not isinstance(data, dict):
            raise Retryable(f"HTTP {status} with an unexpected body: {str(data)[:200]}")
        return data

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        with self._rng_lock:
            u = self._rng.random()
        delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)) * (0.5 + 0.5 * u)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff_s))
        return delay

    def with_retries(self, endpoint: str, fn: Callable[[], T], run: Run | None = None) -> T:
        """Call ``fn()`` up to ``max_retries + 1`` times on ``endpoint``.

        Raises :class:`EndpointGone` when ``run`` ends or declares the endpoint dead meanwhile, and
        a GenerationError (after marking the endpoint dead in ``run``) when the attempts run out.
        """
        attempt = 0
        while True:
            if run is not None and (run.over or endpoint in run.dead):
                raise EndpointGone(endpoint)
            attempt += 1
            if run is not None:
                run.attempts[endpoint] += 1
            try:
                return fn()
            except Retryable as e:
                if attempt > self.max_retries:
                    reason = f"{attempt} attempts, last error: {describe(e)}"
                    if run is not None:
                        run.mark_dead(endpoint, reason)
                    raise GenerationError(f"endpoint {endpoint} failed: {reason}") from e
                delay = self._backoff(attempt, e.retry_after)
                log.info("%s: attempt %d failed (%s); retrying in %.2fs", endpoint, attempt, describe(e), delay)
                if run is not None:
                    run.retries[endpoint] += 1
                    if run.stop.wait(delay):
                        raise EndpointGone(endpoint) from e
                else:
                    time.sleep(delay)

    def first_endpoint(self, what: str, fn: Callable[[str], T]) -> T:
        """``fn(endpoint)`` with retries on each endpoint in turn; GenerationError when all fail."""
        errors: list[str] = []
        for ep in list(self._preferred):
            try:
                return self.with_retries(ep, lambda: fn(ep))
            except GenerationError as e:
                errors.append(str(e))
                with self._clients_lock:  # try the endpoints that answered first next time
                    if ep in self._preferred:
                        self._preferred.remove(ep)
                        self._preferred.append(ep)
        raise GenerationError(f"{what}: " + "; ".join(errors))
