"""Prefix routing of :mod:`generators.openai_backend`: which endpoint serves which prompt.

A server caches the prompt prefixes it has computed, so prompts that share a long prefix should go to the same
server: then the prefix is computed once, not once per server. The prompts of an evaluation cell share
everything but their last message (the shots, then the question), so a prompt's *shared part* is all its
messages but the last. :func:`route_key` hashes the first ``chars`` characters of that part (roles and contents);
prompts with the same key form a *group*, pinned to one endpoint. A shared part shorter than ``chars`` gives no
key: such a prompt (zero-shot, or a few-shot template's) is not worth pinning and goes to whichever endpoint is
free, as all prompts did before routing.

Keying on a leading chunk rather than the whole shared part also pins together prompts whose shared parts differ
only further on: the cells of one shot order (K = 25, 50, max of one seed extend the same shots) and per-question
prompts that start with common shots (``hybrid`` selection).

:class:`Router` (one per generator) places groups: a group keeps the endpoint it had in an earlier call (its
prefix is cached there); a new group goes to the live endpoint with the fewest pinned prompts outstanding, over
all concurrent calls of the generator, ties broken by a hash of the key and a salt drawn per router (so that
independent processes holding the same prefix, e.g. build workers, spread instead of all choosing the same
server). Groups are placed largest first, so many groups spread evenly; one group always goes to one endpoint.
"""
from __future__ import annotations

import collections
import hashlib
import os
import threading
from typing import Sequence

from generators.base import Prompt

DEFAULT_ROUTE_CHARS = 4096
"""Default length of the leading chunk of the shared part that keys a group (about 1,000 tokens)."""

MAX_REMEMBERED = 4096
"""Groups whose endpoint a router remembers (least recently used forgotten first)."""


def shared_text(prompt: Prompt, limit: int | None = None) -> str:
    """The text of all messages but the last (roles and contents), the part the prompts of a cell share; with
    ``limit``, only the messages up to the one that reaches ``limit`` characters."""
    parts, size = [], 0
    for m in prompt[:-1]:
        parts.append(f"{m.get('role', '')}\x1f{m.get('content') or ''}")
        size += len(parts[-1]) + 1
        if limit is not None and size > limit:
            break
    return "\x1e".join(parts)


def route_key(prompt: Prompt, chars: int) -> str | None:
    """A short hash of the first ``chars`` characters of the shared part; None when it is shorter (or ``chars``
    is 0: routing off)."""
    if chars <= 0:
        return None
    text = shared_text(prompt, chars)
    if len(text) < chars:
        return None
    return hashlib.sha256(text[:chars].encode()).hexdigest()[:16]


class Router:
    """Where each group of one generator's prompts goes (see the module docstring). Thread-safe."""

    def __init__(self, endpoints: Sequence[str], chars: int = DEFAULT_ROUTE_CHARS, salt: str | None = None):
        if chars < 0:
            raise ValueError(f"route_prefix_chars must be >= 0, got {chars}")
        self.chars = chars
        self.salt = os.urandom(8).hex() if salt is None else salt
        self._lock = threading.Lock()
        self._homes: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._load = collections.Counter({ep: 0 for ep in endpoints})

    def keys(self, prompts: Sequence[Prompt]) -> list[str | None]:
        return [route_key(p, self.chars) for p in prompts]

    def rank(self, key: str, endpoint: str) -> str:
        return hashlib.sha256(f"{self.salt}\x1f{key}\x1f{endpoint}".encode()).hexdigest()

    def place(self, key: str, size: int, live: Sequence[str]) -> str:
        """The endpoint for ``size`` outstanding prompts of group ``key``, among ``live``; counted as its load
        until :meth:`release`."""
        if not live:
            raise ValueError("no live endpoint to place a group on")
        with self._lock:
            home = self._homes.get(key)
            if home not in live:
                home = min(live, key=lambda ep: (self._load[ep], self.rank(key, ep)))
            self._homes[key] = home
            self._homes.move_to_end(key)
            while len(self._homes) > MAX_REMEMBERED:
                self._homes.popitem(last=False)
            self._load[home] += size
            return home

    def release(self, endpoint: str, size: int = 1) -> None:
        """``size`` pinned prompts of ``endpoint`` finished (or moved away)."""
        with self._lock:
            self._load[endpoint] -= size

    def load(self) -> dict[str, int]:
        """Pinned prompts outstanding per endpoint, over all running calls."""
        with self._lock:
            return dict(self._load)
