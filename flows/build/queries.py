"""Model-generated bare queries (the paper's unsupervised ICL with generated problems).

The model writes new problems from a few seed problems; only well-formed problems that are not
duplicates (normalised exact or near) of each other, their seeds or the test split are kept.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from flows.core.problem import Problem, content_id, normalize_text
from flows.core.seeds import seeded_rng
from flows.core.tasks import TASKS
from generators.base import Generator, Sampling
from generators.prompts import generate_query_prompt

LEAD = re.compile(r"^\s*(?:\*\*)?(?:new\s+)?problem(?:\s*\d+)?\s*[:.]?(?:\*\*)?\s*", re.IGNORECASE)
TAIL = re.compile(r"\n\s*(?:\*\*)?(?:solution|answer|problem\s*\d+)\b.*", re.IGNORECASE | re.DOTALL)
SOLUTION_START = re.compile(r"^(?:answer|solution|to (?:solve|determine|find)|let's|let us|we |first,)", re.IGNORECASE)
MIN_CHARS, MAX_CHARS = 20, 2000
QUERY_FILTER_VERSION = "2"  # part of a generated bank's key: bump when the filters below change
NEAR_DUPLICATE = 0.7


def clean_query(text: str, task: str = "math") -> str | None:
    """The problem statement in a model's output, or None if it is not a well-formed problem.

    The task's ``query_shape`` cuts the text to its shape (one GSM8K paragraph ending in a question, with no
    worked arithmetic; MATH problems may span lines); no problem carries a solution or a boxed answer.
    """
    text = TAIL.sub("", LEAD.sub("", text.strip(), count=1)).strip()
    text = TASKS[task].query_shape(text)
    if text is None or not MIN_CHARS <= len(text) <= MAX_CHARS or "\\boxed" in text or "\x00" in text:
        return None
    if SOLUTION_START.match(text) or sum(c.isalpha() for c in text) < 10 or text[-1] not in ".?$)":
        return None
    return text


def shingles(text: str, n: int = 3) -> frozenset[str]:
    words = normalize_text(text).split()
    return frozenset(" ".join(words[i:i + n]) for i in range(max(1, len(words) - n + 1)))


class DuplicateIndex:
    """Normalised exact and near-duplicate look-ups over a growing set of texts.

    Two texts are near duplicates when most word 3-grams of either one occur in the other
    (containment, so a truncated or extended copy of a seed problem counts too).
    """

    def __init__(self, texts: Iterable[str] = ()):
        self.exact: set[str] = set()
        self.sets: list[frozenset[str]] = []
        self.by_shingle: dict[str, list[int]] = {}
        for t in texts:
            self.add(t)

    def add(self, text: str) -> None:
        self.exact.add(normalize_text(text))
        sh = shingles(text)
        for s in sh:
            self.by_shingle.setdefault(s, []).append(len(self.sets))
        self.sets.append(sh)

    def duplicate(self, text: str) -> bool:
        if normalize_text(text) in self.exact:
            return True
        sh = shingles(text)
        for i in {i for s in sh for i in self.by_shingle.get(s, ())}:
            other = self.sets[i]
            if len(sh & other) / min(len(sh), len(other)) >= NEAR_DUPLICATE:
                return True
        return False


@dataclass(frozen=True)
class QueryRequest:
    seeds: tuple[Problem, ...]


def query_requests(pool: Sequence[Problem], count: int, per_prompt: int, seed: int, chunk: int) -> list[QueryRequest]:
    """``count`` requests, each with ``per_prompt`` seed problems drawn with a seeded RNG."""
    rng = seeded_rng("generated", seed, chunk)
    return [QueryRequest(tuple(rng.sample(list(pool), per_prompt))) for _ in range(count)]


def generate_queries(generator: Generator, task: str, requests: Sequence[QueryRequest], sampling: Sampling,
                     ) -> list[tuple[QueryRequest, str | None, str]]:
    """(request, cleaned problem or None, raw text) for every request, in order."""
    prompts = [generate_query_prompt(task, [p.question for p in r.seeds]) for r in requests]
    completions = generator.generate(prompts, sampling)
    return [(r, clean_query(c.texts[0], task), c.texts[0]) for r, c in zip(requests, completions)]


def accept_queries(candidates: Sequence[tuple[QueryRequest, str | None, str]], index: DuplicateIndex,
                   task: str) -> tuple[list[Problem], list[QueryRequest], dict[str, int]]:
    """Keep new well-formed problems not already in ``index`` (which is updated)."""
    kept, origins = [], []
    stats = {"requested": len(candidates), "malformed": 0, "duplicate": 0, "kept": 0}
    for request, text, _ in candidates:
        if text is None:
            stats["malformed"] += 1
            continue
        if index.duplicate(text):
            stats["duplicate"] += 1
            continue
        index.add(text)
        kept.append(Problem(id=content_id(task, text), task=task, split="generated", question=text,
                            solution=None, answer=""))
        origins.append(request)
        stats["kept"] += 1
    return kept, origins, stats
