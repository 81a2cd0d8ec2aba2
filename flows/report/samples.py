"""The sample browser's data: per cell and item the question, gold, responses and verdicts, and the
shots that were in the prompt, bounded so that the report stays a few MB.

Questions come from the run folder's ``items.parquet`` (:mod:`flows.evaluate.items`), else (folders from before it)
from the test split in the data dir. Shots are the ones the result rows record (``shot_ids``), else (older rows)
reconstructed read-only with ``flows.selection.shot_order`` (test-split overlaps excluded as the eval did, which
needs the test split); either way the rebuilt prompt is checked against the prompt hash stored with every result
row: it is shown as "matches" only when it hashes to the row's ``prompt_hash``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

from flows.core.cellkey import CellKey
from flows.core.data import load_problems
from flows.evaluate.items import read_items
from flows.evaluate.prompts import BankView, contaminated, many_shot_prompt
from flows.evaluate.metrics import bank_name
from flows.core.problem import DataError, Problem
from flows.report.inputs import BankInfo, EvalPart
from flows.core.schema import Shot
from flows.evaluate.shot_selection import shot_order
from generators import prompt_hash


@dataclass(frozen=True)
class Limits:
    items: int = 40        # items per cell in the browser (the same items in every cell)
    samples: int = 4       # responses per item and cell
    text: int = 1500       # characters of a response or question
    shot_text: int = 600   # characters of a shot's question or rationale


def clip(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}… [truncated: {len(text) - limit} more characters]"


def _views(banks: dict[str, BankInfo]) -> dict[str, BankView]:
    return {label: BankView.from_rows(label, info.table.to_pylist())
            for label, info in banks.items() if info.table is not None}


def _shots(view: BankView, orders: dict[int, list[Shot]], seeds_and_k: dict[int, int],
           limits: Limits) -> dict[str, Any]:
    """The bank's shot texts (those used by some cell) and each seed's order, as indexes into them."""
    texts, index, out = [], {}, {}
    for seed, kmax in sorted(seeds_and_k.items()):
        order = []
        for shot in orders[seed][:kmax]:
            if shot.problem_id not in index:
                index[shot.problem_id] = len(texts)
                texts.append([shot.problem_id, clip(shot.question, limits.shot_text),
                              clip(shot.rationale, limits.shot_text)])
            order.append(index[shot.problem_id])
        out[str(seed)] = order
    return {"status": "found", "texts": texts, "orders": out}


def _recorded(rows: pd.DataFrame, seed: int, k: int) -> list[str] | None:
    """The shot ids the run recorded for the seed's K-shot prompts; None for rows from before they were."""
    ids = rows.loc[(rows["seed"] == seed) & (rows["k"] == k), "shot_ids"] if "shot_ids" in rows else []
    return None if len(ids) == 0 or ids.iloc[0] is None else [str(i) for i in ids.iloc[0]]


def _orders(view: BankView, seeds_and_k: dict[int, int], rows: pd.DataFrame,
            test_split: Callable[[], list[Problem]]) -> dict[int, list[Shot]]:
    """Each seed's shots in prompt order: as recorded in the rows, else rebuilt (which needs the test split)."""
    by_id = {s.shot_id: s for s in view.shots}
    orders = {}
    for seed, kmax in seeds_and_k.items():
        ids = _recorded(rows, seed, kmax)
        if ids is None:
            orders[seed] = shot_order(view, seed, contaminated(view, test_split()))
            continue
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise DataError(f"the results name shots that bank {view.label} does not have: {', '.join(missing[:3])}")
        orders[seed] = [by_id[i] for i in ids]
    return orders


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _verdict_rows(group: pd.DataFrame, limits: Limits) -> list[list[Any]]:
    rows = []
    for r in group.sort_values("sample").head(limits.samples).itertuples():
        rows.append([int(r.sample), clip(r.response, limits.text), _text(r.extracted_strict),
                     _text(r.extracted_flexible),
                     bool(r.correct_strict), bool(r.correct_flexible), int(r.prompt_tokens)])
    return rows


def eval_samples(part: EvalPart, banks: dict[str, BankInfo], limits: Limits,
                 data_dir: str | None = None) -> dict[str, Any]:
    """The browser's data for one evaluation (JSON-ready)."""
    results = part.results
    if results.empty:
        return {"task": part.task, "cells": [], "items": [], "questions": {}, "gold": {}, "rows": {},
                "shots": {}, "note": "; ".join(part.notes) or "no result rows"}
    split: list[Problem] = []

    def test_split() -> list[Problem]:  # read once, and only when needed
        split[:] = split or load_problems(part.task, "test", data_dir)
        return split

    test = (read_items(part.folder, part.task) if part.folder else None) or test_split()
    by_id = {p.id: p for p in test}
    items = list(dict.fromkeys(results["item_id"]))[:limits.items]
    shown = results[results["item_id"].isin(items)]
    cells = shown[["bank", "seed", "k", "k_label"]].drop_duplicates().sort_values(["bank", "seed", "k"])
    views = _views(banks)
    shots, orders = {}, {}
    for bank, g in cells[cells["bank"] != "none"].groupby("bank"):
        if bank not in views:
            where = banks[bank].searched if bank in banks else []
            shots[bank] = {"status": f"bank file not found (looked at: {', '.join(where) or 'nowhere'})"}
            continue
        seeds_and_k = g.groupby("seed")["k"].max().to_dict()
        try:
            orders[bank] = _orders(views[bank], seeds_and_k, results[results["bank"] == bank], test_split)
        except DataError as exc:
            shots[bank] = {"status": f"shots not shown: {exc}"}
            continue
        shots[bank] = _shots(views[bank], orders[bank], seeds_and_k, limits)
    rows, hashes, out_cells = {}, {}, []
    for cell in cells.itertuples():
        view = views.get(cell.bank)
        key = CellKey(cell.bank, int(cell.seed), cell.k_label).name
        out_cells.append({"key": key, "bank": bank_name(cell.bank), "seed": int(cell.seed), "k": int(cell.k),
                          "label": cell.k_label})
        in_cell = shown[(shown["bank"] == cell.bank) & (shown["seed"] == cell.seed) & (shown["k_label"] == cell.k_label)]
        rows[key], hashes[key] = {}, {}
        for item, g in in_cell.groupby("item_id", sort=False):
            rows[key][item] = _verdict_rows(g, limits)
            problem = by_id.get(item)
            if cell.bank != "none" and cell.bank not in orders:
                hashes[key][item] = "shots not available"
            elif problem is None:
                hashes[key][item] = "item not in the test split"
            else:
                prompt = many_shot_prompt(part.task, orders[cell.bank][int(cell.seed)][:int(cell.k)] if view else [],
                                          problem.question)
                hashes[key][item] = "matches" if prompt_hash(prompt) == g["prompt_hash"].iloc[0] else "differs"
    return {"task": part.task, "cells": out_cells, "items": items,
            "questions": {i: clip(by_id[i].question, limits.text) for i in items if i in by_id},
            "gold": {i: str(g) for i, g in shown.groupby("item_id")["gold"].first().items()},
            "rows": rows, "prompt_check": hashes, "shots": shots,
            "total_items": int(results["item_id"].nunique()), "note": "; ".join(part.notes)}
