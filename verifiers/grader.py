"""``verify`` and ``verify_many``: cheap checks in-process, symbolic checks in the worker pool.

Order of checks for one pair: input hygiene (length, control characters, Unicode) -> answer
extraction (whole responses) -> canonical exact match -> shape comparison with exact rational
numbers -> symbolic comparison in a worker process under a hard deadline.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, is_dataclass, replace
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable

from verifiers import pool
from verifiers.compare import compare, method_name, numeric_leaf_eq
from verifiers.extract import bare_answer, check_task_mode, extract_answer, find_answer, is_response
from verifiers.normalize import normalize
from verifiers.numeric import Undefined, parse_number
from verifiers.sanitize import InputRejected, check_answer_length, clean_text
from verifiers.structure import Alternatives, Leaf, Node, Seq, parse_answer
from verifiers.verdict import Verdict

DEFAULT_TIMEOUT_S = 5.0

_NAN = re.compile(r"(?i)(?<![A-Za-z\\])nan(?![A-Za-z])")


def _gold_answer(gold: str, task: str) -> str | None:
    if is_response(gold):
        return extract_answer(gold, task, "strict")
    return bare_answer(gold)


def _pred_answer(pred: str, task: str, mode: str) -> tuple[str, str] | None:
    """(answer, how it was found), or None when the response commits to none."""
    if is_response(pred):
        return find_answer(pred, task, mode)
    return bare_answer(pred), "bare"


def _check_numbers(node) -> None:
    """Raise Undefined for a numeric leaf without a value (``1/0``) anywhere in ``node``."""
    if isinstance(node, Leaf):
        parse_number(node.latex)
    elif is_dataclass(node):
        for value in vars(node).values():
            for child in value if isinstance(value, tuple) else (value,):
                if isinstance(child, tuple):
                    for item in child:
                        _check_numbers(item)
                elif is_dataclass(child):
                    _check_numbers(child)


@dataclass(frozen=True)
class _SymbolicJob:
    """A pair the cheap checks could not decide: both shapes go to a worker process."""

    gold: Node
    pred: Node
    extracted: str
    extraction: str = "bare"


def _grade(gold: str, pred: str, task: str, several: bool = False) -> Verdict | _SymbolicJob:
    check_answer_length(gold)
    check_answer_length(pred)
    g, p = normalize(gold, task), normalize(pred, task)
    if not p:
        return Verdict(False, "no_answer", pred, "empty_answer")
    if not g:
        return Verdict(False, "rejected", pred, "empty_gold")
    if _NAN.search(g) or _NAN.search(p):
        return Verdict(False, "rejected", pred, "undefined_value: nan")
    gold_shape, pred_shape = parse_answer(g), parse_answer(p)
    if several and isinstance(pred_shape, Seq) and pred_shape.kind == "list":
        pred_shape = Alternatives(pred_shape.items)  # several boxes (verifiers.commit)
    _check_numbers(gold_shape)
    _check_numbers(pred_shape)
    if g == p:
        return Verdict(True, "exact", pred)
    used: set = set()
    decided = compare(gold_shape, pred_shape, numeric_leaf_eq, used)
    if decided is not None:
        return Verdict(decided, method_name(used), pred)
    return _SymbolicJob(gold_shape, pred_shape, pred)


def _cheap(gold: str, pred: str, task: str, mode: str) -> Verdict | _SymbolicJob:
    """Everything before the worker pool: hygiene, extraction, exact and numeric checks."""
    try:
        gold_text, pred_text = clean_text(gold), clean_text(pred)
    except InputRejected as exc:
        return Verdict(False, "rejected", None, str(exc))
    found = _pred_answer(pred_text, task, mode)
    if found is None:
        return Verdict(False, "no_answer", None, "no_final_answer")
    extracted, how = found
    gold_answer = _gold_answer(gold_text, task)
    if not gold_answer:
        return Verdict(False, "rejected", extracted, "empty_gold", how)
    try:
        outcome = _grade(gold_answer, extracted, task, several=how == "boxes")
    except InputRejected as exc:
        return Verdict(False, "rejected", extracted, str(exc), how)
    except Undefined as exc:
        return Verdict(False, "rejected", extracted, f"undefined_value: {exc}", how)
    return replace(outcome, extraction=how)


def _symbolic(job: _SymbolicJob, timeout_s: float) -> Verdict:
    return _verdict(job, pool.get_pool().run(("compare", job.gold, job.pred, pool.test_delay()), timeout_s))


def _verdict(job: _SymbolicJob, result: tuple) -> Verdict:
    if result[0] == "ok":
        return Verdict(bool(result[1]), result[2], job.extracted, extraction=job.extraction)
    return Verdict(False, "error", job.extracted, result[1], job.extraction)


def verify(gold: str, pred: str, task: str = "math", *, mode: str = "strict",
           timeout_s: float = DEFAULT_TIMEOUT_S) -> Verdict:
    """Judge ``pred`` (a bare answer or a whole response) against the reference ``gold``.

    ``task`` is ``"math"`` or ``"number"``; ``mode`` (``"strict"``/``"flexible"``) controls
    extraction from whole responses; ``timeout_s`` bounds the symbolic check, whose overrun
    gives ``error="timeout"``. Never raises for bad answer text; raises ValueError/TypeError for
    bad arguments (unknown task or mode, non-string inputs).
    """
    check_task_mode(task, mode)
    outcome = _cheap(gold, pred, task, mode)
    return outcome if isinstance(outcome, Verdict) else _symbolic(outcome, timeout_s)


def verify_many(pairs: Iterable[tuple[str, str]], *, task: str = "math", mode: str = "strict",
                workers: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[Verdict]:
    """``verify`` over (gold, pred) pairs, results in input order.

    Cheap checks run in the calling thread (they are fast and GIL-bound); the distinct pairs of
    answer shapes that need sympy are then sent once each to the shared worker-process pool, up
    to ``workers`` at once (default: one per core).
    """
    check_task_mode(task, mode)
    outcomes = [_cheap(gold, pred, task, mode) for gold, pred in pairs]
    jobs = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, _SymbolicJob)]
    distinct = list(dict.fromkeys((outcomes[i].gold, outcomes[i].pred) for i in jobs))
    n = max(1, workers or os.cpu_count() or 1)

    def run(shapes: tuple) -> tuple:
        return pool.get_pool().run(("compare", *shapes, pool.test_delay()), timeout_s)

    if n == 1 or len(distinct) <= 1:
        results = [run(shapes) for shapes in distinct]
    else:
        with ThreadPoolExecutor(max_workers=min(n, len(distinct)), thread_name_prefix="verify") as executor:
            results = list(executor.map(run, distinct))
    by_shapes = dict(zip(distinct, results))
    for i in jobs:
        outcomes[i] = _verdict(outcomes[i], by_shapes[outcomes[i].gold, outcomes[i].pred])
    return outcomes
