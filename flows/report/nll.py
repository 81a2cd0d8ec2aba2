"""Gold-solution NLL vs K (issue 11, part 2; the paper's section 4.6): does the K-shot prompt make the
reference solution more likely, and does that track accuracy?

For every cell (bank, shot selection, order, seed, K label) of a finished evaluation (or of an ablation's
evaluations) and each of its first ``limit`` test items, the prompt is the one the result row records:
``many_shot_prompt(task, shots, question)`` with the row's ``shot_ids`` looked up in the bank, checked
against the row's ``prompt_hash``, and the item's reference solution (the task's ``gold_rationale``:
GSM8K's solution without calculator annotations plus "The answer is N"; MATH's solution) is scored as the
reply with :meth:`generators.base.Generator.score`. An item's NLL is its mean per-token negative
log-likelihood (nats); a line's (bank and selection) at a K is the mean over its (seed, order, item) units
(95% bootstrap CI over them), and ``token_nll`` pools all their tokens. Rows from before ``shot_ids`` (random
selection, order 0: all an eval made then) have their shots rebuilt as the eval built them,
``shot_order(view, seed, contaminated(view, test))[:k]``, and checked against the row's ``prompt_hash`` the same way.

Writes into the folder: ``analysis-nll.csv`` (one row per eval task, bank, selection, K label; with the strict
accuracy from ``summary.csv``), ``analysis-nll.png`` (NLL vs K beside accuracy vs K, a line per bank and
selection; zero-shot is every line's K=0 point) and per-cell checkpoints under ``analysis-nll-cells/<model>/``,
so a rerun scores only the items no checkpoint holds.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from flows.core.cellkey import CellKey
from flows.runtime.banks import atomic_write
from flows.core.data import load_problems
from flows.evaluate.prompts import BankView, contaminated, many_shot_prompt
from flows.evaluate.shot_selection import shot_order
from flows.evaluate.metrics import bootstrap_ci, line_label, with_labels, with_zero_shot
from flows.core.problem import Problem
from flows.core.schema import Shot
from flows.report.inputs import EvalPart, Inputs, ReportError, label_key, read_inputs
from flows.core.tasks import TASKS
from generators import Generator, prompt_hash

log = logging.getLogger(__name__)

CELLS = "analysis-nll-cells"
CELL_SCHEMA = pa.schema([("item_id", pa.string()), ("tokens", pa.int64()), ("sum_nll", pa.float64()),
                         ("mean_nll", pa.float64()), ("cached_tokens", pa.int64()), ("recomputed", pa.bool_()),
                         ("prompt_hash", pa.string()), ("model_id", pa.string())])


class NLLError(ReportError):
    """The analysis cannot be computed as asked (bank missing, prompt not recorded or not reproducible, no
    solution)."""


@dataclass
class Written:
    table: pd.DataFrame
    paths: list[Path]
    scored: int  # items scored by the model in this run
    reused: int  # items read from checkpoints


@dataclass(frozen=True)
class Cell:
    task: str
    bank: str
    seed: int
    label: str
    k: int
    select: str = "random"
    order: int = 0

    @property
    def key(self) -> str:
        return CellKey(self.bank, self.seed, self.label, self.select, self.order).name


def model_slug(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("_") or "model"


def cells_of(task: str, rows: pd.DataFrame) -> list[Cell]:
    """The cells of labelled result rows (:func:`flows.evaluate.metrics.with_labels`): every selection and order."""
    frame = rows[["bank", "select", "order", "seed", "k_label", "k"]].drop_duplicates()
    cells = [Cell(task, str(r.bank), int(r.seed), str(r.k_label), int(r.k), str(r.select), int(r.order))
             for r in frame.itertuples()]
    return sorted(cells, key=lambda c: (c.bank, c.select != "random", c.select, c.order, c.seed, label_key(c.label)))


def items_of(part: EvalPart, limit: int | None) -> list[str]:
    """The first ``limit`` items in result order: the same items in every cell."""
    items = list(dict.fromkeys(part.all_rows["item_id"]))
    return items if limit is None else items[:limit]


def _view(part: EvalPart, bank: str, banks) -> BankView:
    info = banks.get(bank)
    if info is None or info.table is None:
        where = ", ".join(info.searched) if info is not None else "nowhere"
        raise NLLError(f"bank {bank} of the {part.task} eval not found (looked at: {where}); pass --bank-dir")
    return BankView.from_rows(bank, info.table.to_pylist())


def reference(problem: Problem) -> str:
    if not (problem.solution or "").strip():
        raise NLLError(f"test item {problem.id} has no reference solution to score")
    return TASKS[problem.task].gold_rationale(problem)


def _shots(cell: Cell, item: str, ids, bank: dict[str, Shot], rebuilt: list[Shot] | None) -> list[Shot]:
    """The prompt's shots, in prompt order, from a row's ``shot_ids``; for a row from before the column, the first
    K of ``rebuilt`` (the cell's random order-0 shot order, as the eval made it)."""
    if cell.bank == "none":
        return []
    if ids is None or isinstance(ids, float):  # None or NaN: a row from before the column
        if rebuilt is None:
            raise NLLError(f"cell {cell.key}: its result rows are from before the shot_ids column and its shots "
                           "cannot be rebuilt (only random order-0 cells can); evaluate again to score them")
        return rebuilt[:cell.k]
    unknown = [i for i in ids if i not in bank]
    if unknown:
        raise NLLError(f"cell {cell.key}, item {item}: shot {unknown[0]} is not in bank {cell.bank} "
                       "(the bank changed since the eval)")
    return [bank[i] for i in ids]


def cell_prompts(cell: Cell, rows: pd.DataFrame, items: Sequence[str], by_id: dict[str, Problem],
                 bank: dict[str, Shot], rebuilt: list[Shot] | None = None) -> list[tuple[str, list, str]]:
    """(item, prompt, prompt hash) for the cell's items: the prompt of the shots the cell's ``rows`` record (the
    bank's shots by id), checked against the row's ``prompt_hash``."""
    first = rows.drop_duplicates("item_id").set_index("item_id")
    out = []
    for item in items:
        if item not in first.index:
            continue  # the cell has no row for this item (e.g. an interrupted cell)
        if item not in by_id:
            raise NLLError(f"result item {item} is not in the {cell.task} test split")
        row = first.loc[item]
        shots = _shots(cell, item, row["shot_ids"] if "shot_ids" in row else None, bank, rebuilt)
        prompt = many_shot_prompt(cell.task, shots, by_id[item].question)
        if prompt_hash(prompt) != row["prompt_hash"]:
            raise NLLError(f"cell {cell.key}, item {item}: the prompt made of the row's shots does not match the "
                           "row's prompt_hash (the bank's shots or their order changed since the eval)")
        out.append((item, prompt, row["prompt_hash"]))
    return out


def score_cell(generator: Generator, path: Path, prompts: list[tuple[str, list, str]],
               by_id: dict[str, Problem]) -> tuple[pd.DataFrame, int]:
    """The cell's per-item scores: read from its checkpoint, the missing items scored and added to it."""
    done = pq.read_table(path).to_pandas() if path.exists() else pd.DataFrame(columns=CELL_SCHEMA.names)
    if len(done) and set(done["model_id"]) != {generator.model_id}:
        raise NLLError(f"{path} holds scores of {sorted(set(done['model_id']))}, not {generator.model_id}")
    known = dict(zip(done["item_id"], done["prompt_hash"]))
    stale = {item for item, _, hashed in prompts if item in known and known[item] != hashed}
    if stale:
        log.warning("%s: %d item(s) were scored with another prompt (changed test item or bank), e.g. %s; "
                    "scoring them again", path.name, len(stale), sorted(stale)[0])
        done = done[~done["item_id"].isin(stale)].reset_index(drop=True)
    todo = [(item, prompt, hashed) for item, prompt, hashed in prompts if item not in known or item in stale]
    if todo:
        scores = generator.score([p for _, p, _ in todo], [reference(by_id[i]) for i, _, _ in todo])
        new = pd.DataFrame([{"item_id": item, "tokens": s.tokens, "sum_nll": s.sum_nll, "mean_nll": s.mean_nll,
                             "cached_tokens": s.cached_tokens, "recomputed": s.recomputed, "prompt_hash": hashed,
                             "model_id": generator.model_id} for (item, _, hashed), s in zip(todo, scores)])
        done = new if done.empty else pd.concat([done, new], ignore_index=True)
        atomic_write(pa.Table.from_pandas(done, schema=CELL_SCHEMA, preserve_index=False), path)
    wanted = {item for item, _, _ in prompts}
    return done[done["item_id"].isin(wanted)].reset_index(drop=True), len(todo)


def nll_table(units: pd.DataFrame) -> pd.DataFrame:
    """Mean per-token NLL per (eval task, bank, selection, K label) over (seed, order, item) units, with a 95% CI."""
    out = []
    for (task, bank, select, label), g in units.groupby(["eval_task", "bank", "select", "k_label"]):
        low, high = bootstrap_ci(g["mean_nll"].tolist())
        out.append({"eval_task": task, "bank": bank, "select": select, "k_label": label, "k": g["k"].mean(),
                    "seeds": g["seed"].nunique(), "orders": g["order"].nunique(), "items": g["item_id"].nunique(),
                    "units": len(g),
                    "mean_nll": g["mean_nll"].mean(), "ci_low": low, "ci_high": high,
                    "token_nll": g["sum_nll"].sum() / g["tokens"].sum(), "tokens": int(g["tokens"].sum()),
                    "recomputed": int(g["recomputed"].sum())})
    table = pd.DataFrame(out)
    order = table["k_label"].map(label_key)
    return table.assign(_k=order).sort_values(["eval_task", "bank", "select", "_k"]).drop(columns="_k")


def _strict(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary's strict rows, every selection (random in summaries written before selections)."""
    strict = summary[summary["metric"] == "strict"] if "metric" in summary else summary
    select = strict["select"] if "select" in strict else pd.Series("random", index=strict.index)
    return strict.assign(select=select.where(select.notna(), "random"))


def with_accuracy(table: pd.DataFrame, parts: Sequence[EvalPart]) -> pd.DataFrame:
    """Adds the strict accuracy (over all the eval's items, from its summary) of each row's line and K."""
    keys = ["eval_task", "bank", "select", "k_label"]
    frames = [_strict(part.summary).assign(eval_task=part.task)[[*keys, "accuracy"]] for part in parts]
    accuracy = pd.concat(frames, ignore_index=True).rename(columns={"accuracy": "accuracy_strict"})
    return table.merge(accuracy.assign(k_label=accuracy["k_label"].astype(str)), how="left", on=keys)


def _lines(frame: pd.DataFrame) -> pd.DataFrame:
    """Zero-shot (bank ``none``) as every bank's K=0 point, as the accuracy plots do."""
    needed = frame.assign(source="", transfer=False)
    return with_zero_shot(needed)


def plot(table: pd.DataFrame, parts: Sequence[EvalPart], path: Path, *, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(table["eval_task"]))
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 4.2 * len(tasks)), squeeze=False)
    for row, task in enumerate(tasks):
        nll = _lines(table[table["eval_task"] == task])
        part = next(p for p in parts if p.task == task)
        accuracy = with_zero_shot(_strict(part.summary))
        for ax, frame, column, ylabel in ((axes[row][0], nll, "mean_nll", "gold-solution NLL (nats/token)"),
                                          (axes[row][1], accuracy, "accuracy", "accuracy (strict)")):
            for (bank, select), g in frame.groupby(["bank", "select"]):
                g = g.sort_values("k")
                ax.plot(g["k"], g[column], marker="o", label=line_label(bank, select))
                if column == "mean_nll":
                    ax.fill_between(g["k"], g["ci_low"], g["ci_high"], alpha=0.15)
            ax.set_xscale("symlog", linthresh=1)
            ks = sorted(set(frame["k"].round().astype(int)))
            ax.set_xticks(ks, [str(k) for k in ks], fontsize=7)
            ax.set_xlabel("K (shots)")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{task}: {ylabel}", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def analyze(folder: Path | str, generator: Generator, *, limit: int | None = None, data_dir: str | None = None,
            bank_dirs: Sequence[Path | str] = ()) -> Written:
    """Score, checkpoint, tabulate and plot into ``folder`` (an eval results folder or an ablation folder)."""
    if limit is not None and limit < 1:
        raise NLLError(f"--limit must be at least 1, got {limit}")
    inputs: Inputs = read_inputs(folder, bank_dirs)
    parts = [p for p in inputs.evals if not p.all_rows.empty]
    if not parts:
        raise NLLError(f"{inputs.folder} has no result rows")
    units, scored, reused = [], 0, 0
    for part in parts:
        test = load_problems(part.task, "test", data_dir)
        by_id = {p.id: p for p in test}
        items = items_of(part, limit)
        root = (part.folder or inputs.folder) / CELLS / model_slug(generator.model_id)
        rows = with_labels(part.all_rows)
        views: dict[str, BankView] = {}
        banks: dict[str, dict[str, Shot]] = {}
        for cell in cells_of(part.task, rows):
            if cell.bank != "none" and cell.bank not in banks:
                views[cell.bank] = _view(part, cell.bank, inputs.banks)
                banks[cell.bank] = {s.shot_id: s for s in views[cell.bank].shots}
            in_cell = rows[(rows["bank"] == cell.bank) & (rows["select"] == cell.select) & (rows["order"] == cell.order)
                           & (rows["seed"] == cell.seed) & (rows["k_label"] == cell.label)]
            rebuilt = None
            if cell.bank != "none" and (cell.select, cell.order) == ("random", 0) and \
                    ("shot_ids" not in in_cell or in_cell["shot_ids"].isna().any()):
                view = views[cell.bank]
                rebuilt = shot_order(view, cell.seed, contaminated(view, test))
            prompts = cell_prompts(cell, in_cell, items, by_id, banks.get(cell.bank, {}), rebuilt)
            frame, new = score_cell(generator, root / f"{cell.key}.parquet", prompts, by_id)
            scored, reused = scored + new, reused + len(frame) - new
            units.append(frame.assign(eval_task=part.task, bank=cell.bank, select=cell.select, order=cell.order,
                                      seed=cell.seed, k_label=cell.label, k=cell.k))
    table = with_accuracy(nll_table(pd.concat(units, ignore_index=True)), parts).assign(model=generator.model_id)
    paths = [inputs.folder / "analysis-nll.csv", inputs.folder / "analysis-nll.png"]
    table.to_csv(paths[0], index=False)
    plot(table, parts, paths[1], title=f"{inputs.title}: gold-solution NLL and accuracy vs K ({generator.model_id})")
    return Written(table, paths, scored, reused)


def markdown(table: pd.DataFrame) -> str:
    lines = ["| task | bank | K | items | NLL (nats/token) | 95% CI | token NLL | accuracy (strict) |",
             "|---|---|---|---:|---:|---|---:|---:|"]
    for r in table.itertuples():
        lines.append(f"| {r.eval_task} | {line_label(r.bank, r.select)} | {r.k_label} | {r.items} | {r.mean_nll:.4f} | "
                     f"[{r.ci_low:.4f}, {r.ci_high:.4f}] | {r.token_nll:.4f} | {r.accuracy_strict:.3f} |")
    return "\n".join(lines)
