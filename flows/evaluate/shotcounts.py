"""Shot counts of a sweep: integers and ``max``, the largest K whose prompt fits the context.

``max`` is resolved per bank and seed (each seed orders the bank differently, so the fitting K can
differ), for every test item: the K-shot prompt plus ``max_tokens`` generation tokens must fit
``max_model_len``. A resolution is a pure function of the items, the shot order, the tokenizer and
the budget, so the evaluation stores it beside its cells and a rerun needs no model to know it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from flows.core.problem import Problem
from flows.evaluate.prompts import many_shot_prompt
from flows.core.schema import Shot
from flows.core.specs import MAX, order_key
from generators.base import Generator

def label_key(label: str) -> tuple[int, int]:
    """Sort key of a K label as written in results ("0", "16", "max")."""
    return order_key(label if label == MAX else int(label))


@dataclass(frozen=True)
class Resolution:
    k: int
    prompt_tokens: int  # the longest item's prompt at K
    reason: str


def resolve_max(generator: Generator, task: str, shots: Sequence[Shot], items: Sequence[Problem],
                max_tokens: int) -> Resolution:
    """The largest K <= len(shots) whose prompt fits ``max_model_len - max_tokens`` for every item.

    Prompts grow with K (they nest), so a binary search on the item with the longest zero-shot prompt
    finds the candidate; every item is then counted at that K, stepping down while any does not fit.
    """
    budget = generator.max_model_len - max_tokens

    def longest(k: int, pool: Sequence[Problem]) -> int:
        return max(generator.count_tokens(many_shot_prompt(task, shots[:k], p.question)) for p in pool)

    widest = max(items, key=lambda p: generator.count_tokens(many_shot_prompt(task, [], p.question)))
    zero_shot = longest(0, [widest])
    if zero_shot > budget:
        return Resolution(0, zero_shot, f"even the zero-shot prompt exceeds {budget} tokens")
    low, high = 0, len(shots)  # invariant: K=low fits the widest item
    while low < high:
        mid = (low + high + 1) // 2
        if longest(mid, [widest]) <= budget:
            low = mid
        else:
            high = mid - 1
    k = low
    tokens = longest(k, items)
    while k > 0 and tokens > budget:
        k -= 1
        tokens = longest(k, items)
    if k == len(shots):
        why = f"all {k} usable shots fit ({tokens} prompt tokens at most)"
    else:
        why = (f"K={k + 1} would exceed max_model_len {generator.max_model_len} less {max_tokens} generation "
               f"tokens; K={k} needs {tokens}")
    return Resolution(k, tokens, why)
