"""Which shots of a bank go into a prompt, and in what order: the one home of shot selection.

A :class:`ShotSelector` serves one bank for one eval. ``shots(question, k, seed, order)`` is the K-shot
list of a prompt; the eval calls it and records its choice in each result row (``shot_ids``), which the
report's samples and the analyses (similarity, NLL) read instead of choosing again. Strategies (``--select``):

- ``random``: one seeded shuffle of the bank per seed (one shot per problem); the K-shot prompt is its
  first K shots, so the prompts of a sweep nest and every test question shares the K-shot prefix.
- ``complex``: the shots with the most reasoning steps (non-empty rationale lines, as in complexity-based
  prompting) first; ties keep the seed's random order. Nested. Needs rationales.
- ``diverse``: k-means++ seeding order on the embeddings of the bank's questions: the first shot is the
  seed's random first, each next one is drawn with probability proportional to its squared distance to
  the nearest shot already chosen. Every prefix is a k-means++ set of K centres (one shot per region of
  the question space, as Auto-CoT's one-per-cluster); unlike K separate k-means runs the prompts nest.
- ``similar``: per test question, the K shots whose questions are most similar (cosine, kNN), the most
  similar last (nearest the question, as in KATE). Each question has its own prefix, so the engine's
  prefix sharing is lost: these cells cost more (the summary's wall time shows how much).

``order`` j > 0 (``--orders N``) is the same K shots in another seeded permutation (the paper's ordering
sensitivity); order 0 is the strategy's own order.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from flows.core.errors import UserError
from flows.evaluate.prompts import BankView
from flows.core.schema import Shot
from flows.core.seeds import seeded_rng

STRATEGIES = ("random", "similar", "diverse", "complex")
EMBEDDED = ("similar", "diverse")  # the strategies that need embeddings

Embed = Callable[[str, Sequence[str]], np.ndarray]  # (cache group, texts) -> L2-normalised rows


class SelectionError(UserError, ValueError):
    """A selection strategy that cannot be used (unknown name, no rationales, no embedder)."""


def parse_select(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"random,similar"`` (or a list) -> ``("random", "similar")``, in the order given, unique."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown or not names:
        raise SelectionError(f"--select takes {', '.join(STRATEGIES)} (comma-separated), got {text!r}")
    return tuple(dict.fromkeys(names))


def unique_shots(view: BankView, exclude: set[str] = frozenset()) -> list[Shot]:
    """The bank's shots, one per problem (its first by shot id), less the excluded problem ids."""
    seen, out = set(), []
    for s in view.shots:
        if s.problem_id not in exclude and s.problem_id not in seen:
            seen.add(s.problem_id)
            out.append(s)
    return out


def shot_order(view: BankView, seed: int, exclude: set[str] = frozenset()) -> list[Shot]:
    """One seeded ordering of the bank (one shot per problem), independent of the bank's row order: the
    ``random`` selection's order."""
    return list(ShotSelector(view, exclude=exclude).order(seed))


def steps(shot: Shot) -> int:
    """Reasoning steps of a shot: its rationale's non-empty lines."""
    return sum(1 for line in (shot.rationale or "").splitlines() if line.strip())


def permuted(shots: list[Shot], seed: int, order: int) -> list[Shot]:
    if order == 0:
        return shots
    out = list(shots)
    seeded_rng("orders", seed, len(shots), order).shuffle(out)
    return out


class ShotSelector:
    """The shots of one bank's prompts under one strategy. ``embed`` is needed for ``similar``/``diverse``;
    ``embedder`` names it in :attr:`label` (e.g. ``similar/minilm``), so results say which one was used."""

    def __init__(self, view: BankView, strategy: str = "random", *, exclude: set[str] = frozenset(),
                 embed: Embed | None = None, embedder: str = ""):
        if strategy not in STRATEGIES:
            raise SelectionError(f"unknown selection {strategy!r}: expected one of {', '.join(STRATEGIES)}")
        if strategy in EMBEDDED and embed is None:
            raise SelectionError(f"selection {strategy!r} needs an embedder")
        if strategy == "complex" and view.unsupervised:
            raise SelectionError(f"selection 'complex' orders shots by rationale steps; bank {view.label} has none")
        self.view, self.strategy, self.embed = view, strategy, embed
        self.label = f"{strategy}/{embedder.split(':')[0]}" if strategy in EMBEDDED else strategy
        self.pool = unique_shots(view, exclude)
        self._orders: dict[tuple[str, int], list[Shot]] = {}
        self._vectors: np.ndarray | None = None
        self._questions: dict[str, np.ndarray] = {}

    @property
    def nested(self) -> bool:
        """Whether every question's K-shot list is the first K of one order (a prefix shared by all)."""
        return self.strategy != "similar"

    @property
    def usable(self) -> int:
        return len(self.pool)

    def prepare(self, questions: Sequence[str], group: str) -> None:
        """Embed the test questions at once (``similar``), cached under ``group``."""
        if self.strategy == "similar":
            missing = [q for q in dict.fromkeys(questions) if q not in self._questions]
            if missing:
                self._questions.update(zip(missing, self.embed(group, missing)))

    def shots(self, question: str, k: int, seed: int, order: int = 0) -> list[Shot]:
        if self.strategy == "similar":
            chosen = self._similar(question, k, seed)
        else:
            chosen = self.order(seed)[:k]
        return permuted(chosen, seed, order)

    def _random(self, seed: int) -> list[Shot]:
        if ("random", seed) not in self._orders:
            base = list(self.pool)
            seeded_rng("order", seed).shuffle(base)
            self._orders["random", seed] = base
        return self._orders["random", seed]

    def order(self, seed: int) -> list[Shot]:
        """The full nested order of a seed (ties broken by it for ``similar``)."""
        if (self.strategy, seed) not in self._orders:
            base = self._random(seed)
            if self.strategy == "complex":
                base = sorted(base, key=steps, reverse=True)  # stable: ties keep the random order
            elif self.strategy == "diverse":
                base = self._kmeanspp(base, seed)
            self._orders[self.strategy, seed] = base
        return self._orders[self.strategy, seed]

    def vectors(self) -> np.ndarray:
        """The pool's question embeddings, rows in pool order."""
        if self._vectors is None:
            self._vectors = self.embed(f"bank-{self.view.label}", [s.question for s in self.pool])
        return self._vectors

    def _kmeanspp(self, base: list[Shot], seed: int) -> list[Shot]:
        row = {s.problem_id: i for i, s in enumerate(self.pool)}
        vectors = self.vectors()[[row[s.problem_id] for s in base]].astype(np.float64)
        rng = seeded_rng("diverse", seed)
        chosen = [0]
        dist = np.maximum(0.0, 2.0 - 2.0 * vectors @ vectors[0])  # squared distance of unit vectors
        left = np.ones(len(base), dtype=bool)
        left[0] = False
        while left.any():
            weights = np.where(left, dist, 0.0)
            total = float(weights.sum())
            if total <= 1e-12:  # only duplicates of chosen shots remain: keep the random order
                chosen += [i for i in range(len(base)) if left[i]]
                break
            pick = int(np.searchsorted(np.cumsum(weights), rng.random() * total, side="right"))
            pick = min(pick, len(base) - 1)
            while not left[pick]:  # float edge: land on the next shot still left
                pick = (pick + 1) % len(base)
            chosen.append(pick)
            left[pick] = False
            dist = np.minimum(dist, np.maximum(0.0, 2.0 - 2.0 * vectors @ vectors[pick]))
        return [base[i] for i in chosen]

    def _similar(self, question: str, k: int, seed: int) -> list[Shot]:
        if question not in self._questions:
            self.prepare([question], "questions")
        sims = self.vectors() @ self._questions[question]
        rank = {s.problem_id: i for i, s in enumerate(self._random(seed))}
        ranked = sorted(range(len(self.pool)), key=lambda i: (-float(sims[i]), rank[self.pool[i].problem_id]))
        return [self.pool[i] for i in reversed(ranked[:k])]  # the most similar last, nearest the question


def make_selectors(views: Sequence[BankView], strategies: Sequence[str], exclude: dict[str, set[str]], *,
                   embedder: str = "auto", questions: Sequence[str] = (), group: str = "questions",
                   cache_dir: str | None = None) -> dict[tuple[str, str], ShotSelector]:
    """A selector per (bank label, strategy). The embedder (``auto``, ``minilm``, ``tfidf``) is made only when a
    strategy needs it, fitted for TF-IDF on every bank question and ``questions``, and its vectors are cached as
    :mod:`flows.report.similarity` caches them (``bank-<label>`` and ``group``); ``questions`` are embedded at once."""
    embed, name = None, ""
    if any(s in EMBEDDED for s in strategies):
        from flows.evaluate.embeddings import DEFAULT_CACHE, EmbeddingCache, make_embedder

        corpus = [s.question for v in views for s in v.shots] + list(questions)
        model, cache = make_embedder(embedder, corpus), EmbeddingCache(cache_dir or DEFAULT_CACHE)
        embed, name = (lambda g, texts: cache.embed(model, g, texts)), model.name
    out = {}
    for view in views:
        for strategy in strategies:
            selector = ShotSelector(view, strategy, exclude=exclude.get(view.label, set()), embed=embed, embedder=name)
            selector.prepare(questions, group)
            out[view.label, strategy] = selector
    return out
