"""Top-1 similarity vs accuracy (issue 11, part 1): is a test question answered better when its prompt
holds a shot that is close to it, and is that the same at every K?

For every cell and test item of a finished evaluation (or of an ablation's evaluations) the prompt's
shots are the ones its result row records (``shot_ids``: every shot selection and order); rows from before
that column have them rebuilt as the eval built them, ``shot_order(view, seed, contaminated(view, test))[:k]``,
checked against the row's ``prompt_hash``. The top-1 similarity is the largest cosine similarity between
the test question and a shot's question (``flows.evaluate.embeddings``). Units are (bank, seed, item) with the
item's majority-vote score (``flows.evaluate.metrics.item_scores``); accuracy per similarity bucket and K gets a
95% bootstrap CI over those units. Zero-shot rows have no shots and are left out.

Writes into the folder: ``analysis-similarity.csv`` (the bucket table), ``analysis-similarity.md``
(the same, with the buckets, embedder and the mean top-1 similarity per K), ``analysis-similarity.png``
and ``analysis-similarity-units.parquet`` (one row per unit: similarity, nearest shot, scores).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from flows.core.cellkey import CellKey
from flows.core.data import load_problems
from flows.evaluate.embeddings import DEFAULT_CACHE, Embedder, EmbeddingCache, make_embedder
from flows.evaluate.prompts import BankView, contaminated, many_shot_prompt
from flows.evaluate.shot_selection import shot_order
from flows.evaluate.metrics import bootstrap_ci, item_scores, line_label, with_labels
from flows.report.inputs import EvalPart, Inputs, ReportError, label_key, read_inputs
from generators import prompt_hash

DEFAULT_EDGES = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
METRICS = ("strict", "flexible")
ALL_BANKS = "all banks"


class SimilarityError(ReportError):
    """The analysis cannot be computed as asked (bank missing, prompt not reproducible, bad buckets)."""


@dataclass
class Written:
    table: pd.DataFrame
    units: pd.DataFrame
    embedder: str
    paths: list[Path]
    cache_hits: int
    cache_misses: int


def parse_edges(text: str) -> tuple[float, ...]:
    """``"0.3,0.5,0.7"`` -> inner bucket edges, strictly increasing, inside (-1, 1)."""
    try:
        edges = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise SimilarityError(f"--buckets: expected comma-separated numbers, got {text!r}") from None
    check_edges(edges)
    return edges


def check_edges(edges: Sequence[float]) -> None:
    if not edges or any(b <= a for a, b in zip(edges, edges[1:])) or edges[0] <= -1 or edges[-1] >= 1:
        raise SimilarityError(f"bucket edges must be strictly increasing numbers inside (-1, 1), got {list(edges)}")


def bucket_names(edges: Sequence[float]) -> list[str]:
    """Half-open buckets [low, high); the first starts at -1, the last ends at 1 inclusive."""
    bounds = [-1.0, *edges, 1.0]
    return [f"[{lo:.2f}, {hi:.2f}{']' if i == len(edges) else ')'}"
            for i, (lo, hi) in enumerate(zip(bounds, bounds[1:]))]


def bucket_of(similarity: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    return np.searchsorted(np.asarray(edges), similarity, side="right")


def _view(part: EvalPart, bank: str, banks) -> BankView:
    info = banks.get(bank)
    if info is None or info.table is None:
        where = ", ".join(info.searched) if info is not None else "nowhere"
        raise SimilarityError(f"bank {bank} of the {part.task} eval not found (looked at: {where}); "
                              "pass --bank-dir")
    return BankView.from_rows(bank, info.table.to_pylist())


def top1_units(part: EvalPart, banks, embedder: Embedder, cache: EmbeddingCache,
               test) -> pd.DataFrame:
    """One row per (bank, selection, order, seed, K label, item): the top-1 similarity of the item to the shots
    its prompt had, and the nearest shot's problem id. The shots are the row's ``shot_ids``, so every selection
    and order is covered; rows from before that column (random order 0 only) get their shots rebuilt with
    :func:`shot_order` and checked against the row's ``prompt_hash``."""
    rows = part.all_rows
    results = with_labels(rows[rows["bank"] != "none"])
    by_id = {p.id: p for p in test}
    missing = sorted(set(results["item_id"]) - set(by_id))
    if missing:
        raise SimilarityError(f"{len(missing)} result items are not in the {part.task} test split, e.g. {missing[0]}")
    items = list(dict.fromkeys(results["item_id"]))
    test_vectors = dict(zip(items, cache.embed(embedder, f"{part.task}-test", [by_id[i].question for i in items])))
    if "shot_ids" not in results:
        results = results.assign(shot_ids=None)
    rows = []
    for bank, in_bank in results.groupby("bank"):
        view = _view(part, bank, banks)
        index = {s.shot_id: n for n, s in enumerate(view.shots)}
        runs = {(str(select), int(order), int(seed)): _prompt_shots(part, view, index, by_id, test, bank,
                                                                     str(select), int(order), int(seed), run)
                for (select, order, seed), run in in_bank.groupby(["select", "order", "seed"])}
        used = sorted({n for prompts in runs.values() for positions in prompts.values() for n in positions})
        embedded = cache.embed(embedder, f"bank-{bank}", [view.shots[n].question for n in used])
        vector = dict(zip(used, embedded))  # only the shots some prompt had are embedded
        for (select, order, seed), prompts in runs.items():
            for (label, k, item), positions in prompts.items():
                sims = np.array([vector[n] for n in positions]) @ test_vectors[item]
                best = int(np.argmax(sims))
                rows.append({"eval_task": part.task, "bank": bank, "select": str(select), "order": int(order),
                             "seed": int(seed), "k_label": str(label), "k": int(k), "item_id": item,
                             "top1_similarity": float(sims[best]),
                             "top1_shot": view.shots[positions[best]].problem_id, "top1_rank": best})
    return pd.DataFrame(rows)


def _prompt_shots(part: EvalPart, view: BankView, index: dict, by_id: dict, test, bank: str, select: str,
                  order: int, seed: int, run: pd.DataFrame) -> dict[tuple, list[int]]:
    """(K label, K, item) -> the positions in ``view.shots`` of the shots in that prompt, in prompt order."""
    cells = run.groupby(["k_label", "k", "item_id"])[["shot_ids", "prompt_hash"]].first()
    out = {}
    rebuilt = None
    for (label, k, item), row in cells.iterrows():
        ids = row["shot_ids"]
        if ids is not None and not (isinstance(ids, float) and np.isnan(ids)):
            unknown = [i for i in ids if i not in index]
            if unknown:
                raise SimilarityError(f"cell {CellKey(bank, seed, label, select, order).name}, item {item}: shot "
                                      f"{unknown[0]} is not in bank {bank} (the bank changed since the eval)")
            out[label, k, item] = [index[i] for i in ids]
            continue
        if (select, order) != ("random", 0):
            raise SimilarityError(f"cell {CellKey(bank, seed, label, select, order).name}: its rows predate the "
                                  "shot_ids column, and only random order-0 prompts can be rebuilt; evaluate again")
        if rebuilt is None:
            rebuilt = shot_order(view, seed, contaminated(view, test))
        shots = rebuilt[:int(k)]
        if prompt_hash(many_shot_prompt(part.task, shots, by_id[item].question)) != row["prompt_hash"]:
            raise SimilarityError(f"cell {CellKey(bank, seed, label).name}, item {item}: the rebuilt prompt does "
                                  "not match the row's prompt_hash (bank or shot order changed since the eval)")
        out[label, k, item] = [index[s.shot_id] for s in shots]
    return out


def _with_scores(units: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """The units with each item's strict and flexible score in its run; a line per bank and selection after it."""
    keys = ["bank", "select", "order", "seed", "k_label", "item_id"]
    for metric in METRICS:
        scores = item_scores(results[results["bank"] != "none"], f"correct_{metric}")
        scores = scores.assign(k_label=scores["k_label"].astype(str))[keys + ["score"]]
        units = units.merge(scores.rename(columns={"score": f"score_{metric}"}), on=keys, how="left")
    return units.assign(bank=[line_label(b, s) for b, s in zip(units["bank"], units["select"])])


def bucket_table(units: pd.DataFrame, edges: Sequence[float], embedder: str) -> pd.DataFrame:
    """Accuracy per (eval task, bank or all banks, K label, bucket, metric), with counts and 95% CIs."""
    names = bucket_names(edges)
    units = units.assign(bucket_index=bucket_of(units["top1_similarity"].to_numpy(), edges))
    pooled = [units] if units["bank"].nunique() == 1 else [units, units.assign(bank=ALL_BANKS)]
    out = []
    for (task, bank, label, index), g in pd.concat(pooled).groupby(["eval_task", "bank", "k_label", "bucket_index"]):
        for metric in METRICS:
            values = g[f"score_{metric}"].astype(float).tolist()
            low, high = bootstrap_ci(values)
            out.append({"eval_task": task, "bank": bank, "k_label": label, "k": g["k"].mean(),
                        "bucket": names[index], "bucket_low": ([-1.0, *edges])[index],
                        "bucket_high": ([*edges, 1.0])[index], "metric": metric, "units": len(values),
                        "items": g["item_id"].nunique(), "correct": sum(values),
                        "accuracy": sum(values) / len(values), "ci_low": low, "ci_high": high,
                        "mean_similarity": g["top1_similarity"].mean(), "embedder": embedder})
    table = pd.DataFrame(out)
    if table.empty:
        return table
    order = table["k_label"].map(label_key)
    return table.assign(_k=order).sort_values(["eval_task", "bank", "metric", "_k", "bucket_low"]).drop(columns="_k")


def markdown(table: pd.DataFrame, units: pd.DataFrame, edges: Sequence[float], embedder: str) -> str:
    lines = ["# Top-1 similarity vs accuracy", "",
             f"embedder: `{embedder}`; buckets of the top-1 cosine similarity: {', '.join(bucket_names(edges))}; "
             "units: (bank, seed, item), majority vote over samples; 95% bootstrap CI over units.", "",
             "Mean top-1 similarity per K (it grows with K: more shots, a closer nearest one):", "",
             "| task | bank | K | units | mean | min | max |", "|---|---|---|---:|---:|---:|---:|"]
    for (task, bank, label), g in sorted(units.groupby(["eval_task", "bank", "k_label"]),
                                         key=lambda kv: (kv[0][0], kv[0][1], label_key(kv[0][2]))):
        s = g["top1_similarity"]
        lines.append(f"| {task} | {bank} | {label} | {len(g)} | {s.mean():.3f} | {s.min():.3f} | {s.max():.3f} |")
    lines += ["", "| task | bank | metric | K | bucket | units | accuracy | 95% CI |",
              "|---|---|---|---|---|---:|---:|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.eval_task} | {r.bank} | {r.metric} | {r.k_label} | {r.bucket} | {r.units} | "
                     f"{r.accuracy:.3f} | [{r.ci_low:.3f}, {r.ci_high:.3f}] |")
    return "\n".join(lines) + "\n"


def plot(table: pd.DataFrame, edges: Sequence[float], path: Path, *, title: str) -> Path:
    """Accuracy per bucket, one line per K with CI bars; a column per (task, bank), a row per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = bucket_names(edges)
    panels = list(table[["eval_task", "bank"]].drop_duplicates().itertuples(index=False))
    fig, axes = plt.subplots(len(METRICS), len(panels), figsize=(4.6 * len(panels), 7), squeeze=False)
    for col, (task, bank) in enumerate(panels):
        for row, metric in enumerate(METRICS):
            ax = axes[row][col]
            view = table[(table["eval_task"] == task) & (table["bank"] == bank) & (table["metric"] == metric)]
            labels = sorted(view["k_label"].unique(), key=label_key)
            for n, label in enumerate(labels):
                g = view[view["k_label"] == label]
                x = [names.index(b) + (n - (len(labels) - 1) / 2) * 0.06 for b in g["bucket"]]
                ax.errorbar(x, g["accuracy"], yerr=[g["accuracy"] - g["ci_low"], g["ci_high"] - g["accuracy"]],
                            marker="o", capsize=3, label=f"K={label}")
            ax.set_xticks(range(len(names)), names, rotation=45, fontsize=7)
            ax.set_ylim(-0.05, 1.05)
            ax.set_title(f"{task}: {bank}", fontsize=8)
            ax.set_ylabel(f"accuracy ({metric})")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.supxlabel("top-1 cosine similarity (test question vs nearest shot in the prompt)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def analyze(folder: Path | str, *, edges: Sequence[float] = DEFAULT_EDGES, embedder: str | Embedder = "auto",
            cache_dir: Path | str = DEFAULT_CACHE, data_dir: str | None = None,
            bank_dirs: Sequence[Path | str] = ()) -> Written:
    """Compute and write the analysis into ``folder`` (an eval results folder or an ablation folder)."""
    check_edges(edges)
    inputs: Inputs = read_inputs(folder, bank_dirs)
    parts = [p for p in inputs.evals if not p.results.empty and (p.results["bank"] != "none").any()]
    if not parts:
        raise SimilarityError(f"{inputs.folder} has no result rows with shots (only zero-shot or none)")
    tests = {p.task: load_problems(p.task, "test", data_dir) for p in parts}
    if isinstance(embedder, str):
        corpus = [s.question for p in parts for b in set(p.results["bank"]) - {"none"}
                  for s in _view(p, b, inputs.banks).shots] + [q.question for t in tests.values() for q in t]
        embedder = make_embedder(embedder, corpus)
    cache = EmbeddingCache(cache_dir)
    units = pd.concat([_with_scores(top1_units(p, inputs.banks, embedder, cache, tests[p.task]),
                                    p.all_rows)
                       for p in parts], ignore_index=True)
    table = bucket_table(units, edges, embedder.name)
    out = inputs.folder
    paths = [out / "analysis-similarity.csv", out / "analysis-similarity.md",
             out / "analysis-similarity-units.parquet", out / "analysis-similarity.png"]
    table.to_csv(paths[0], index=False)
    paths[1].write_text(markdown(table, units, edges, embedder.name))
    units.assign(embedder=embedder.name).to_parquet(paths[2], index=False)
    plot(table, edges, paths[3], title=f"{inputs.title}: accuracy vs top-1 shot similarity ({embedder.name})")
    return Written(table, units, embedder.name, paths, cache.hits, cache.misses)
