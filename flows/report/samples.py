"""The sample browser's data: per cell and item the question, gold, responses and verdicts, and the
shots that were in the prompt, bounded so that the report stays a few MB.

Every cell of the results is covered: each bank, shot selection (random, similar, diverse, complex), order
(``--orders``), seed and K. Questions come from the run folder's ``items.parquet`` (:mod:`flows.evaluate.items`),
else (folders from before it) from the test split in the data dir. A prompt's shots are the ones its result row
records (``shot_ids``, in prompt order), looked up in the bank by id; the prompt they make is checked against the
row's ``prompt_hash`` and shown as "matches" only when it hashes to it (it differs when the bank changed since
the eval). Rows from before ``shot_ids`` (random selection, order 0: all an eval made then) have their shots
rebuilt as the eval built them, ``shot_order(view, seed, contaminated(view, test))[:k]``, checked the same way and
marked as rebuilt; other rows without ``shot_ids`` show no shots.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from flows.core.cellkey import CellKey
from flows.core.data import load_problems
from flows.evaluate.items import read_items
from flows.evaluate.prompts import BankView, contaminated, many_shot_prompt
from flows.evaluate.shot_selection import shot_order
from flows.evaluate.metrics import bank_name, with_labels
from flows.report.inputs import BankInfo, EvalPart
from generators import prompt_hash

NOT_RECORDED = "shots not recorded: these result rows are from before the shot_ids column"
REBUILT = " (shots rebuilt: these result rows are from before the shot_ids column)"


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


def _recorded(ids: Any) -> list[str] | None:
    """A row's ``shot_ids`` as a list; None for rows from before that column."""
    return None if ids is None or isinstance(ids, float) else [str(i) for i in ids]  # None or NaN: not recorded


class _BankShots:
    """One bank's shots as the browser holds them: the texts of the shots some prompt had, and each distinct
    prompt's shot list as indexes into them (the prompts of nested selections share one list)."""

    def __init__(self, view: BankView, limits: Limits):
        self.by_id = {s.shot_id: s for s in view.shots}
        self.limits, self.texts, self.lists = limits, [], []
        self._text, self._list = {}, {}

    def add(self, ids: list[str]) -> int:
        """The list number of a prompt's shots; KeyError naming a shot the bank does not have."""
        if tuple(ids) not in self._list:
            for i in ids:
                if i not in self._text:
                    shot = self.by_id[i]
                    self._text[i] = len(self.texts)
                    self.texts.append([shot.problem_id, clip(shot.question, self.limits.shot_text),
                                       clip(shot.rationale, self.limits.shot_text)])
            self._list[tuple(ids)] = len(self.lists)
            self.lists.append([self._text[i] for i in ids])
        return self._list[tuple(ids)]

    def data(self) -> dict[str, Any]:
        return {"status": "found", "texts": self.texts, "lists": self.lists}


def _selection(select: str, order: int) -> str:
    """How the browser names a cell's shot selection: the selector's label, and its order when not 0."""
    return select if order == 0 else f"{select}, order {order}"


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _verdict_rows(group: pd.DataFrame, limits: Limits) -> list[list[Any]]:
    rows = []
    for r in group.sort_values("sample").head(limits.samples).itertuples():
        rows.append([int(r.sample), clip(r.response, limits.text), _text(r.extracted_strict),
                     _text(r.extracted_flexible),
                     bool(r.correct_strict), bool(r.correct_flexible), int(r.prompt_tokens)])
    return rows


def _prompt(task: str, shots: _BankShots | None, bank: str, ids: list[str] | None, question: str | None,
            hashed: str) -> tuple[int | str | None, str]:
    """A prompt's shot list (its number in the bank's lists, None for zero-shot, or why it is not shown) and
    whether the prompt those shots make hashes as the row's."""
    if bank == "none":
        chosen = []
        listed = None
    elif shots is None:
        return "bank file not found", "shots not available"
    elif ids is None:
        return NOT_RECORDED, "shots not available"
    else:
        try:
            listed = shots.add(ids)
        except KeyError as exc:
            return f"the results name a shot that bank {bank} does not have: {exc.args[0]}", "shots not available"
        chosen = [shots.by_id[i] for i in ids]
    if question is None:
        return listed, "item not in the test split"
    return listed, "matches" if prompt_hash(many_shot_prompt(task, chosen, question)) == hashed else "differs"


def eval_samples(part: EvalPart, banks: dict[str, BankInfo], limits: Limits,
                 data_dir: str | None = None) -> dict[str, Any]:
    """The browser's data for one evaluation (JSON-ready): every cell of its results."""
    results = part.all_rows
    if results.empty:
        return {"task": part.task, "cells": [], "items": [], "questions": {}, "gold": {}, "rows": {},
                "shots": {}, "note": "; ".join(part.notes) or "no result rows"}
    test = (read_items(part.folder, part.task) if part.folder else None) or load_problems(part.task, "test", data_dir)
    by_id = {p.id: p for p in test}
    items = list(dict.fromkeys(results["item_id"]))[:limits.items]
    shown = with_labels(results[results["item_id"].isin(items)])
    if "shot_ids" not in shown:
        shown = shown.assign(shot_ids=None)
    keys = ["bank", "select", "order", "seed", "k_label"]
    cells = shown[[*keys, "k"]].drop_duplicates(keys).assign(_other=lambda f: f["select"] != "random")
    cells = cells.sort_values(["bank", "_other", "select", "order", "seed", "k"])
    views = _views(banks)
    shots = {b: _BankShots(views[b], limits) for b in sorted(set(cells["bank"]) - {"none"}) if b in views}
    rows, prompts, hashes, out_cells = {}, {}, {}, []
    orders: dict[tuple[str, int], list[str]] = {}  # (bank, seed) -> the random order-0 shot ids, for older rows
    full: list | None = None
    for cell in cells.itertuples():
        bank, seed, order = str(cell.bank), int(cell.seed), int(cell.order)
        key = CellKey(bank, seed, cell.k_label, cell.select, order).name
        out_cells.append({"key": key, "bank": bank_name(bank), "selection": _selection(cell.select, order),
                          "seed": seed, "k": int(cell.k), "label": cell.k_label})
        in_cell = shown[(shown["bank"] == bank) & (shown["select"] == cell.select) & (shown["order"] == order)
                        & (shown["seed"] == seed) & (shown["k_label"] == cell.k_label)]
        rows[key], prompts[key], hashes[key] = {}, {}, {}
        for item, g in in_cell.groupby("item_id", sort=False):
            rows[key][item] = _verdict_rows(g, limits)
            problem = by_id.get(item)
            ids = _recorded(g["shot_ids"].iloc[0])
            rebuilt = ids is None and bank in views and (cell.select, order) == ("random", 0)
            if rebuilt:
                if (bank, seed) not in orders:  # the eval excluded shots against the whole test split
                    full = full or load_problems(part.task, "test", data_dir)
                    view = views[bank]
                    orders[bank, seed] = [s.shot_id for s in shot_order(view, seed, contaminated(view, full))]
                ids = orders[bank, seed][:int(cell.k)]
            prompts[key][item], hashes[key][item] = _prompt(
                part.task, shots.get(bank), bank, ids, problem.question if problem else None, g["prompt_hash"].iloc[0])
            if rebuilt:
                hashes[key][item] += REBUILT
    status = {b: banks[b].searched if b in banks else [] for b in set(cells["bank"]) - {"none"} - set(shots)}
    return {"task": part.task, "cells": out_cells, "items": items,
            "questions": {i: clip(by_id[i].question, limits.text) for i in items if i in by_id},
            "gold": {i: str(g) for i, g in shown.groupby("item_id")["gold"].first().items()},
            "rows": rows, "prompt_shots": prompts, "prompt_check": hashes,
            "shots": {b: s.data() for b, s in shots.items()}
            | {b: {"status": f"bank file not found (looked at: {', '.join(where) or 'nowhere'})"}
               for b, where in status.items()},
            "total_items": int(results["item_id"].nunique()), "note": "; ".join(part.notes)}
