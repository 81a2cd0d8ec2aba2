"""What ``manyshot report`` reads: an eval results folder or an ablation folder, its banks and analyses.

An eval results folder (``flows/evaluate.py``: a sweep's run folder ``<eval>/runs/<run key>``, written once)
holds ``results.parquet``, ``summary.csv`` and ``summary.md``. An ablation folder (``flows/ablate.py``) holds
``summary.md`` (the bank paths and, per eval, its results folder), ``summary.csv`` (with ``eval_task``) and
plots; its samples come from the run folders' results. Ablations from before run folders name the eval
folder itself, whose ``results.parquet`` a later sweep may have rewritten: their samples come from its cell files.

Skipped cells and test-split overlaps are parsed from ``summary.md`` lines (``skipped <cell>: <why>``,
``overlap with the test split: ...``): they are not stored in a structured file yet.

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

from flows.bank import read_bank
from flows.metrics import with_labels

ANALYSIS_SUFFIXES = (".png", ".svg", ".csv", ".md", ".txt")
_SKIP = re.compile(r"^skipped (?P<bank>.+?)-s(?P<seed>\d+)-k(?P<k>\d+|max): (?P<why>.*)$")
_OVERLAP = "overlap with the test split:"


class ReportError(ValueError):
    """The folder is not an eval results folder or an ablation folder, or is incomplete."""


@dataclass
class Skipped:
    bank: str
    seed: int
    k: str  # the K label: "16" or "max"
    reason: str


@dataclass
class EvalPart:
    """One evaluation: its summary (as the run wrote it), result rows, skipped cells and notes."""

    task: str
    folder: Path | None
    summary: pd.DataFrame
    results: pd.DataFrame
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


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


def parse_summary_lines(text: str) -> tuple[list[Skipped], list[str]]:
    """Skipped cells and test-split overlap notes from a summary.md written by evaluate or ablate."""
    skipped, notes = [], []
    for line in text.splitlines():
        match = _SKIP.match(line.strip())
        if match:
            skipped.append(Skipped(match["bank"], int(match["seed"]), match["k"], match["why"]))
        elif line.startswith(_OVERLAP):
            notes.append(line.strip())
    return skipped, notes


def label_key(label: str) -> tuple[int, int | str]:
    """Sort key of a K label: integers ascending, then words such as "max"."""
    return (0, int(label)) if str(label).isdigit() else (1, str(label))


def default_selection(results: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The rows of the default shot selection (random, order 0), which the sample browser and the analyses
    rebuild, and a note naming the rows of other selections or orders left out ("" when there are none)."""
    if results.empty:
        return results, ""
    labelled = with_labels(results)
    keep = (labelled["select"] == "random") & (labelled["order"] == 0)
    if keep.all():
        return results, ""
    other = labelled[~keep]
    kinds = sorted({f"{s} order {o}" if o else s for s, o in zip(other["select"], other["order"])})
    return results[keep], (f"{len(other)} result rows of other shot selections or orders ({', '.join(kinds)}) are in "
                           "the summary only: samples and analyses rebuild random order-0 prompts")


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
    text = (folder / "summary.md").read_text() if (folder / "summary.md").exists() else ""
    skipped, notes = parse_summary_lines(text)
    task = str(results["task"].iloc[0]) if len(results) else "?"
    results, other = default_selection(results)
    if other:
        notes.append(other)
    return EvalPart(task, folder, with_k_labels(pd.read_csv(summary_csv)), with_k_labels(results), skipped, notes)


def _cell_k(folder: Path, bank: str, seed: int, label: str) -> str | None:
    """The K of a cell file: the label itself, or for ``max`` the K its resolution file recorded."""
    if label.isdigit():
        return label
    resolution = folder / "cells" / f"{bank}-s{seed}-k{label}.json"
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
        if isinstance(select, str) and select != "random":
            continue  # the sample browser and the analyses rebuild random order-0 prompts only
        for seed in range(int(getattr(row, "seeds", 1))):
            k = _cell_k(folder, row.bank, seed, row.k_label)
            path = folder / "cells" / f"{row.bank}-s{seed}-k{k}.parquet"
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


def _read_ablation(folder: Path, bank_dirs: Sequence[Path]) -> Inputs:
    text = (folder / "summary.md").read_text()
    summary = with_k_labels(pd.read_csv(folder / "summary.csv"))
    listed = dict(re.findall(r"^- ([^:\n]+): (.+\.parquet)$", text, flags=re.M))
    search = [*bank_dirs, folder.parent / "banks"]
    banks = {}
    for name, path in listed.items():
        info = locate_bank(Path(path).stem, path, search)
        info.name = name
        banks[info.label] = info
    evals, eval_folders = [], []
    sections = re.split(r"^## eval on ", text, flags=re.M)[1:]
    tasks = [s.split("\n", 1)[0].strip() for s in sections]
    for task, section in zip(tasks, sections):
        part_summary = summary[summary["eval_task"] == task] if "eval_task" in summary else summary
        skipped, notes = parse_summary_lines(section)
        results_line = re.search(r"^results: (.+)$", section, flags=re.M)
        eval_folder = _eval_folder(results_line[1].strip(), folder) if results_line else None
        if eval_folder is None:
            notes.append(f"eval folder {results_line[1] if results_line else '?'} not found: no samples")
            results = pd.DataFrame()
        else:
            eval_folders.append(eval_folder)
            results, other = default_selection(_cell_rows(eval_folder, part_summary))
            notes += [other] if other else []
        evals.append(EvalPart(task, eval_folder, part_summary.reset_index(drop=True), results, skipped, notes))
    title = text.split("\n", 1)[0].lstrip("# ").strip()
    return Inputs("ablation", folder, title, evals, banks, _analyses([folder, *eval_folders]))


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
