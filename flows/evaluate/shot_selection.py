"""Which shots of a bank go into a prompt, and in what order: the one home of shot selection.

A :class:`ShotSelector` serves one bank for one eval. ``shots(question, k, seed, order)`` is the K-shot
list of a prompt; the eval and every analysis that rebuilds a prompt (samples, similarity, NLL) call it,
so they agree with each other by construction. Strategies (``--select``):

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
- ``hybrid`` (``hybridM``; ``hybrid`` is ``hybrid4``): a fixed block shared by every question, then each question's
  own M nearest (Golchin et al. 2025). The block is the first K - M shots of the seed's ``random`` order (so it
  nests across K and the engine's prefix cache serves it to every question of a sweep); the M nearest are
  ``similar``'s ranking over the shots not in the block, the most similar last. K <= M is ``similar``. A cell
  costs one shared prefix plus M shots per question instead of K per question. M = 4 by default: a few nearest
  shots, a per-question tail that stays small next to the K swept (not tuned: sweep ``hybrid2,hybrid4,...``).

``order`` j > 0 (``--orders N``) is the same K shots in another seeded permutation (the paper's ordering
sensitivity); order 0 is the strategy's own order. ``hybrid`` permutes its shared block only and keeps the
nearest shots last (the placement is the strategy; the permuted block is still one prefix for all questions);
without a shared block (K <= M) it permutes the nearest shots as ``similar`` does.
"""
from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np

from flows.core.errors import UserError
from flows.evaluate.prompts import BankView
from flows.core.schema import Shot
from flows.core.seeds import seeded_rng

STRATEGIES = ("random", "similar", "diverse", "complex", "hybrid")
EMBEDDED = ("similar", "diverse", "hybrid")  # the strategies that need embeddings
PER_QUESTION = ("similar", "hybrid")  # the strategies whose prompts differ per question (they do not nest)
HYBRID_NEAREST = 4  # hybrid's default M: its per-question nearest shots
_HYBRID = re.compile(r"^hybrid(\d*)$")

Embed = Callable[[str, Sequence[str]], np.ndarray]  # (cache group, texts) -> L2-normalised rows


class SelectionError(UserError, ValueError):
    """A selection strategy that cannot be used (unknown name, no rationales, no embedder)."""


def strategy_of(name: str) -> tuple[str, int]:
    """A selection name's (strategy, M): ``("hybrid", 8)`` for ``hybrid8``, ``("hybrid", 4)`` for ``hybrid``,
    ``(name, 0)`` for the others; SelectionError for an unknown name or M < 1."""
    if (found := _HYBRID.match(name)) is None:
        if name not in STRATEGIES:
            raise SelectionError(f"unknown selection {name!r}: expected one of {', '.join(STRATEGIES)} "
                                 f"(hybridM: M nearest shots per question)")
        return name, 0
    nearest = int(found[1]) if found[1] else HYBRID_NEAREST
    if nearest < 1:
        raise SelectionError(f"selection {name!r}: hybrid needs at least 1 nearest shot (hybrid1, hybrid2, ...)")
    return "hybrid", nearest


def canonical(name: str) -> str:
    """A selection's one spelling: ``hybrid`` is ``hybrid4`` (M always named, so cells of another M never mix)."""
    strategy, nearest = strategy_of(name)
    return f"hybrid{nearest}" if strategy == "hybrid" else strategy


def nests(name: str) -> bool:
    """Whether a selection's prompts are the first K of one order (a prefix shared by every question)."""
    return strategy_of(name)[0] not in PER_QUESTION


def parse_select(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"random,similar"`` (or a list) -> ``("random", "similar")``, in the order given, unique, each in its
    :func:`canonical` spelling (``hybrid`` -> ``hybrid4``)."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    try:
        if not names:
            raise SelectionError("no selection given")
        return tuple(dict.fromkeys(canonical(n) for n in names))
    except SelectionError:
        raise SelectionError(f"--select takes {', '.join(STRATEGIES)} or hybridM (M >= 1 nearest shots per "
                             f"question; hybrid is hybrid{HYBRID_NEAREST}), comma-separated, got {text!r}") from None


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
    """The shots of one bank's prompts under one selection (a strategy name, or ``hybridM``). ``embed`` is needed
    for ``similar``/``diverse``/``hybrid``; ``embedder`` names it in :attr:`label` (e.g. ``similar/minilm``,
    ``hybrid4/minilm``), so results say which one was used."""

    def __init__(self, view: BankView, strategy: str = "random", *, exclude: set[str] = frozenset(),
                 embed: Embed | None = None, embedder: str = ""):
        name = canonical(strategy)
        strategy, self.nearest = strategy_of(strategy)
        if strategy in EMBEDDED and embed is None:
            raise SelectionError(f"selection {strategy!r} needs an embedder")
        if strategy == "complex" and view.unsupervised:
            raise SelectionError(f"selection 'complex' orders shots by rationale steps; bank {view.label} has none")
        self.view, self.strategy, self.embed = view, strategy, embed
        self.label = f"{name}/{embedder.split(':')[0]}" if strategy in EMBEDDED else name
        self.pool = unique_shots(view, exclude)
        self._orders: dict[tuple[str, int], list[Shot]] = {}
        self._vectors: np.ndarray | None = None
        self._questions: dict[str, np.ndarray] = {}

    @property
    def nested(self) -> bool:
        """Whether every question's K-shot list is the first K of one order (a prefix shared by all)."""
        return self.strategy not in PER_QUESTION

    @property
    def usable(self) -> int:
        return len(self.pool)

    def prepare(self, questions: Sequence[str], group: str) -> None:
        """Embed the test questions at once (``similar``, ``hybrid``), cached under ``group``."""
        if self.strategy in PER_QUESTION:
            missing = [q for q in dict.fromkeys(questions) if q not in self._questions]
            if missing:
                self._questions.update(zip(missing, self.embed(group, missing)))

    def shots(self, question: str, k: int, seed: int, order: int = 0) -> list[Shot]:
        if self.strategy == "hybrid" and k > self.nearest:
            shared = self._random(seed)[:k - self.nearest]
            taken = {s.problem_id for s in shared}
            return permuted(shared, seed, order) + self._similar(question, self.nearest, seed, taken)
        if self.strategy in PER_QUESTION:
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
        """The full nested order of a seed (ties broken by it for ``similar``; ``hybrid``'s shared block)."""
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

    def _similar(self, question: str, k: int, seed: int, taken: set[str] = frozenset()) -> list[Shot]:
        """The K shots nearest the question, less the ``taken`` problem ids; ties in the seed's random order."""
        if question not in self._questions:
            self.prepare([question], "questions")
        sims = self.vectors() @ self._questions[question]
        rank = {s.problem_id: i for i, s in enumerate(self._random(seed))}
        left = [i for i, s in enumerate(self.pool) if s.problem_id not in taken]
        ranked = sorted(left, key=lambda i: (-float(sims[i]), rank[self.pool[i].problem_id]))
        return [self.pool[i] for i in reversed(ranked[:k])]  # the most similar last, nearest the question


def make_selectors(views: Sequence[BankView], strategies: Sequence[str], exclude: dict[str, set[str]], *,
                   embedder: str = "auto", questions: Sequence[str] = (), group: str = "questions",
                   cache_dir: str | None = None) -> dict[tuple[str, str], ShotSelector]:
    """A selector per (bank label, strategy). The embedder (``auto``, ``minilm``, ``tfidf``) is made only when a
    strategy needs it, fitted for TF-IDF on every bank question and ``questions``, and its vectors are cached as
    :mod:`flows.report.similarity` caches them (``bank-<label>`` and ``group``); ``questions`` are embedded at once."""
    embed, name = None, ""
    if any(strategy_of(s)[0] in EMBEDDED for s in strategies):
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
