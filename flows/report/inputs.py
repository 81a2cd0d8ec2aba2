"""What ``manyshot report`` reads: an eval results folder or an ablation folder, its banks and analyses.

An eval results folder (``flows/evaluate/flow.py``: a sweep's run folder ``<eval>/runs/<run key>``, written once)
holds ``results.parquet``, ``summary.csv`` and ``summary.md``. An ablation folder (``flows/ablate.py``) holds
``summary.md`` (the bank paths and, per eval, its results folder), ``summary.csv`` (with ``eval_task``) and
plots; its samples come from the run folders' results. Ablations from before run folders name the eval
folder itself, whose ``results.parquet`` a later sweep may have rewritten: their samples come from its cell files.

Skipped cells and test-split overlaps come from ``summary.json`` (:mod:`flows.evaluate.results`, beside the
``summary.md`` of run and ablation folders); folders written before it existed are read from ``summary.md`` lines.

Analyses: files named ``analysis-*.png``, ``.svg``, ``.csv``, ``.md`` or ``.txt`` in the folder (and
in an ablation's eval folders) are shown in the report's "Analyses" section.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from flows.core.cellkey import CellKey
from flows.core.errors import UserError
from flows.runtime.banks import read_bank
from flows.evaluate.metrics import with_labels
from flows.evaluate.results import Skipped, from_meta, parse_summary_lines, skipped_and_notes
from flows.core.taskfile import register_from_folder

ANALYSIS_SUFFIXES = (".png", ".svg", ".csv", ".md", ".txt")


class ReportError(UserError, ValueError):
    """The folder is not an eval results folder or an ablation folder, or is incomplete."""


@dataclass
class EvalPart:
    """One evaluation: its summary (as the run wrote it), result rows, skipped cells, notes and the reference bank
    of its paired differences (None: not chosen; :func:`flows.paired.reference_line` picks one)."""

    task: str
    folder: Path | None
    summary: pd.DataFrame
    results: pd.DataFrame
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reference: str | None = None
    #: Every result row, other shot selections and orders included (``results`` holds the default selection's):
    #: the sample browser and the analyses read the rows' ``shot_ids`` and cover them all.
    all_results: pd.DataFrame | None = None

    @property
    def all_rows(self) -> pd.DataFrame:
        """Every result row: ``all_results``, else (a part made without it) ``results``."""
        return self.all_results if self.all_results is not None else self.results


@dataclass
class BankInfo:
    label: str
    name: str | None = None
    path: Path | None = None
    table: pa.Table | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    searched: list[str] = field(default_factory=list)


@dataclass
class Inputs:
    kind: str  # "eval" or "ablation"
    folder: Path
    title: str
    evals: list[EvalPart]
    banks: dict[str, BankInfo]
    analyses: list[Path]


def label_key(label: str) -> tuple[int, int | str]:
    """Sort key of a K label: integers ascending, then words such as "max"."""
    return (0, int(label)) if str(label).isdigit() else (1, str(label))


def default_selection(results: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The rows of the default shot selection (random, order 0), which the prompt-token table covers, and a
    note naming the rows of other selections or orders it leaves out ("" when there are none)."""
    if results.empty:
        return results, ""
    labelled = with_labels(results)
    keep = (labelled["select"] == "random") & (labelled["order"] == 0)
    if keep.all():
        return results, ""
    other = labelled[~keep]
    kinds = sorted({f"{s} order {o}" if o else s for s, o in zip(other["select"], other["order"])})
    return results[keep], (f"{len(other)} result rows of other shot selections or orders ({', '.join(kinds)}) are "
                           "left out of the prompt-token table (random order 0 only); the summary, the samples and "
                           "the analyses have them")


def with_k_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """A summary or results frame with a string ``k_label`` on every row (older files have only ``k``)."""
    if frame.empty or "k" not in frame:
        return frame
    fallback = frame["k"].round().astype(int).astype(str)
    if "k_label" not in frame:
        return frame.assign(k_label=fallback)
    given = frame["k_label"]
    return frame.assign(k_label=given.where(given.notna(), fallback).map(
        lambda v: str(int(v)) if isinstance(v, float) else str(v)))


def _existing(candidates: Sequence[Path]) -> Path | None:
    return next((c for c in candidates if c.exists()), None)


def locate_bank(label: str, listed: str | None, search: Sequence[Path]) -> BankInfo:
    """Find ``<label>.parquet``: at its listed path, else in the search folders; read it if found."""
    candidates = ([Path(listed)] if listed else []) + [d / f"{label}.parquet" for d in search]
    info = BankInfo(label, searched=[str(c) for c in candidates])
    info.path = _existing(candidates)
    if info.path is not None:
        info.table, info.metadata = read_bank(info.path)
    return info


def _analyses(folders: Sequence[Path]) -> list[Path]:
    found = []
    for folder in folders:
        found += sorted(p for p in folder.glob("analysis-*") if p.suffix.lower() in ANALYSIS_SUFFIXES)
    return found


def _read_eval_folder(folder: Path) -> EvalPart:
    results = pq.read_table(folder / "results.parquet").to_pandas()
    summary_csv = folder / "summary.csv"
    if not summary_csv.exists():
        raise ReportError(f"{folder} has results.parquet but no summary.csv")
    skipped, notes = _skipped_and_notes(folder)
    register_from_folder(folder)  # a task file's eval: its test questions come from the file's data
    task = str(results["task"].iloc[0]) if len(results) else "?"
    every = results
    results, other = default_selection(results)
    if other:
        notes.append(other)
    meta = json.loads((folder / "summary.json").read_text()) if (folder / "summary.json").exists() else {}
    return EvalPart(task, folder, with_k_labels(pd.read_csv(summary_csv)), with_k_labels(results), skipped, notes,
                    meta.get("reference"), with_k_labels(every))


def _cell_k(folder: Path, bank: str, seed: int, label: str, select: str) -> str | None:
    """The K of a cell file: the label itself, or for ``max`` the K its resolution file recorded."""
    if label.isdigit():
        return label
    resolution = CellKey(bank, seed, label, select).path(folder / "cells", ".json")
    return str(json.loads(resolution.read_text())["k"]) if resolution.exists() else None


def _cell_rows(folder: Path, summary: pd.DataFrame) -> pd.DataFrame:
    """The result rows of exactly the ablation's cells: a run folder's results (written once for that sweep),
    or for an ablation from before run folders, the cell files of the eval folder it names."""
    if not (folder / "cells").is_dir():
        return pq.read_table(folder / "results.parquet").to_pandas()
    frames = []
    strict = summary[summary["metric"] == "strict"] if "metric" in summary else summary
    for row in strict.itertuples():
        select = getattr(row, "select", "random")  # NaN in summaries written before selections
        select = select if isinstance(select, str) else "random"
        orders = getattr(row, "orders", 1)  # NaN or absent in summaries written before orders
        for seed in range(int(getattr(row, "seeds", 1))):
            k = _cell_k(folder, row.bank, seed, row.k_label, select)
            for order in range(1 if pd.isna(orders) else int(orders)):
                path = CellKey(row.bank, seed, k, select, order).path(folder / "cells")
                if k is not None and path.exists():
                    frames.append(pq.read_table(path).to_pandas().assign(k_label=row.k_label))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _eval_folder(listed: str, ablation: Path) -> Path | None:
    """The eval (run) folder an ablation names, also after the output root moved: ``evals/<eval>/runs/<run>``
    or, before run folders, ``evals/<eval>``, under the ablation folder's parent."""
    path = Path(listed)
    moved = ablation.parent / "evals" / (f"{path.parent.parent.name}/runs/{path.name}" if path.parent.name == "runs"
                                         else path.name)
    return _existing([path, moved, ablation.parent / path])


def _skipped_and_notes(folder: Path) -> tuple[list[Skipped], list[str]]:
    try:
        return skipped_and_notes(folder)
    except ValueError as exc:
        raise ReportError(str(exc)) from None


def _ablation_meta(folder: Path) -> dict[str, Any]:
    """The title, the banks (name -> path) and per eval its task, run folder, skipped cells and notes: from
    ``summary.json``, or from an older ablation's ``summary.md``."""
    path = folder / "summary.json"
    if path.exists():
        try:
            meta = json.loads(path.read_text())
            evals = []
            for e in meta["evals"]:
                skipped, notes = from_meta(e)
                evals.append({"task": e["task"], "folder": e["folder"], "skipped": skipped, "notes": notes,
                              "reference": e.get("reference")})
            return {"title": meta["title"], "banks": meta["banks"], "evals": evals}
        except (ValueError, KeyError, TypeError) as exc:
            raise ReportError(f"{path} is not an ablation summary.json written by manyshot: {exc}") from None
    text = (folder / "summary.md").read_text()
    evals = []
    for section in re.split(r"^## eval on ", text, flags=re.M)[1:]:
        skipped, notes = parse_summary_lines(section)
        results_line = re.search(r"^results: (.+)$", section, flags=re.M)
        evals.append({"task": section.split("\n", 1)[0].strip(), "skipped": skipped, "notes": notes,
                      "folder": results_line[1].strip() if results_line else None})
    return {"title": text.split("\n", 1)[0].lstrip("# ").strip(),
            "banks": dict(re.findall(r"^- ([^:\n]+): (.+\.parquet)$", text, flags=re.M)), "evals": evals}


def _read_ablation(folder: Path, bank_dirs: Sequence[Path]) -> Inputs:
    meta = _ablation_meta(folder)
    summary = with_k_labels(pd.read_csv(folder / "summary.csv"))
    search = [*bank_dirs, folder.parent / "banks"]
    banks = {}
    for name, path in meta["banks"].items():
        info = locate_bank(Path(path).stem, path, search)
        info.name = name
        banks[info.label] = info
    evals, eval_folders = [], []
    for entry in meta["evals"]:
        task, notes = entry["task"], entry["notes"]
        part_summary = summary[summary["eval_task"] == task] if "eval_task" in summary else summary
        eval_folder = _eval_folder(entry["folder"], folder) if entry["folder"] else None
        if eval_folder is None:
            notes.append(f"eval folder {entry['folder'] or '?'} not found: no samples")
            every = pd.DataFrame()
        else:
            eval_folders.append(eval_folder)
            register_from_folder(eval_folder)
            every = with_k_labels(_cell_rows(eval_folder, part_summary))
        results, other = default_selection(every)
        notes += [other] if other else []
        evals.append(EvalPart(task, eval_folder, part_summary.reset_index(drop=True), results, entry["skipped"], notes,
                              entry.get("reference"), every))
    return Inputs("ablation", folder, meta["title"], evals, banks, _analyses([folder, *eval_folders]))


def read_inputs(folder: Path | str, bank_dirs: Sequence[Path | str] = ()) -> Inputs:
    """Everything the report shows, from an eval results folder or an ablation folder."""
    folder = Path(folder)
    bank_dirs = [Path(d) for d in bank_dirs]
    if (folder / "results.parquet").exists():
        part = _read_eval_folder(folder)
        search = [*bank_dirs, folder.parent.parent / "banks", folder.parent / "banks",
                  *(p / "banks" for p in folder.parents[2:4])]  # <root>/evals/<eval>/runs/<run>: <root>/banks
        labels = sorted(set(part.results["bank"]) - {"none"})
        banks = {label: locate_bank(label, None, search) for label in labels}
        return Inputs("eval", folder, f"eval {folder.name}", [part], banks, _analyses([folder]))
    if (folder / "summary.md").exists() and (folder / "summary.csv").exists():
        return _read_ablation(folder, bank_dirs)
    raise ReportError(f"{folder} is neither an eval results folder (results.parquet) nor an ablation folder "
                      "(summary.md and summary.csv)")
