"""The one place seeds are derived: every random choice of a build or an evaluation is seeded from a path of
parts, such as ``("order", seed)`` or ``(seed, chunk, round)``, so two choices never share a stream by accident
and each can be reproduced on its own.

Two older derivations stay as they are, because existing banks and cells are named by what they produced: the
problem selection shuffles with ``random.Random(seed)`` (:func:`flows.core.data.select`; every bank key hashes the
selected problems) and generated-mode chunks sample with engine seed ``seed * 1_000_003 + chunk``.
"""
from __future__ import annotations

import hashlib
import random


def _path(parts: tuple[object, ...]) -> str:
    return "/".join(str(p) for p in parts)


def derive_seed(*parts: object) -> int:
    """A 31-bit engine seed for ``parts`` (SHA-256 of ``"a/b/c"``): stable across processes and machines."""
    return int.from_bytes(hashlib.sha256(_path(parts).encode()).digest()[:4], "big") & 0x7FFFFFFF


def seeded_rng(*parts: object) -> random.Random:
    """A ``random.Random`` seeded with the string ``"a/b/c"`` (string seeds hash with SHA-512: stable too)."""
    return random.Random(_path(parts))
