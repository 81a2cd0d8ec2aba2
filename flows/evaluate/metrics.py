"""Accuracy tables with bootstrap confidence intervals, and the accuracy-vs-K plot."""
from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

from flows.evaluate.shotcounts import label_key

GROUP = ["bank", "source", "transfer", "select", "k_label"]
LINE = ["bank", "select", "source", "transfer"]  # one line of a table or plot
RUN = ["seed", "order"]  # one run of a cell's items: a seed's shots in one of their orders


def _column(results: pd.DataFrame, name: str, default) -> pd.Series:
    given = results[name] if name in results else pd.Series(None, index=results.index, dtype=object)
    return given.where(given.notna(), default)


def with_labels(results: pd.DataFrame) -> pd.DataFrame:
    """Results with a K label on every row (the sweep's, "max", where set, else K itself), and the selection
    and order of cells written before those columns (random, order 0)."""
    return results.assign(k_label=_column(results, "k_label", results["k"].astype(str)),
                          select=_column(results, "select", "random"),
                          order=_column(results, "order", 0).astype(int))


def default_lines(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary rows of the default shot selection (random; all rows of a summary from before selections)."""
    return summary[summary["select"].isin(["random"]) | summary["select"].isna()] if "select" in summary else summary


ZERO_SHOT = "zero-shot"  # what readers see for the bank label "none" (K=0, no bank) that data keeps


def bank_name(bank: str) -> str:
    """The bank as shown: its label, or "zero-shot" for the no-bank label "none"."""
    return ZERO_SHOT if bank == "none" else bank


def line_label(bank: str, select: str) -> str:
    """A line's name: the bank, and its shot selection unless that is the default random order."""
    return bank_name(bank) if select == "random" else f"{bank_name(bank)} [{select}]"


def item_scores(results: pd.DataFrame, column: str) -> pd.DataFrame:
    """One score per (group, seed, item): the majority-vote answer's correctness over samples (the most common
    extracted answer, a tie going to the answer seen first; 0 when no sample has an answer)."""
    extracted = "extracted_strict" if column == "correct_strict" else "extracted_flexible"
    keys = [*GROUP, *RUN, "item_id"]
    frame = with_labels(results).assign(extracted=results[extracted], row=range(len(results)))
    votes = (frame[frame["extracted"].notna()].groupby([*keys, "extracted"], sort=False, dropna=False)
             .agg(count=("row", "size"), first=("row", "min"), score=(column, "first")).reset_index()
             .sort_values(["count", "first"], ascending=[False, True]).drop_duplicates(keys))
    out = frame[keys].drop_duplicates().merge(votes[[*keys, "score"]], on=keys, how="left")
    return out.assign(score=out["score"].fillna(False).astype(float)).sort_values(keys, ignore_index=True)


def bootstrap_ci(values: list[float], *, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    return means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per bank, source, selection and K label (strict and flexible), 95% CI over items (each item's
    score averaged over seeds and orders); ``seed_min``/``seed_max`` are the extremes over those runs.

    ``k`` is the mean K of the group's cells (a ``max`` label can stand for a different K per seed),
    ``k_min``/``k_max`` its range; ``prompt_tokens`` and ``prompt_tokens_max`` are over the group's rows.
    """
    labelled = with_labels(results)
    sizes = labelled.groupby(GROUP, sort=True).agg(k=("k", "mean"), k_min=("k", "min"), k_max=("k", "max"))
    if "prompt_tokens" in labelled:
        tokens = labelled.groupby(GROUP, sort=True)["prompt_tokens"].agg(["mean", "max"])
        sizes = sizes.join(tokens.rename(columns={"mean": "prompt_tokens", "max": "prompt_tokens_max"}))
    out = []
    for column in ("correct_strict", "correct_flexible"):
        scores = item_scores(results, column)
        for keys, g in scores.groupby(GROUP, sort=True):
            per_item = g.groupby("item_id")["score"].mean().tolist()
            per_seed = g.groupby(RUN)["score"].mean()
            low, high = bootstrap_ci(per_item)
            out.append(dict(zip(GROUP, keys)) | sizes.loc[keys].to_dict() | {
                "metric": column.removeprefix("correct_"), "items": len(per_item), "seeds": g["seed"].nunique(),
                "orders": g["order"].nunique(),
                "accuracy": sum(per_item) / len(per_item), "ci_low": low, "ci_high": high,
                "seed_min": per_seed.min(), "seed_max": per_seed.max()})
    return pd.DataFrame(out)


def order_spread(results: pd.DataFrame, subjects: dict[str, str] | None = None,
                 metric: str = "strict") -> pd.DataFrame:
    """The ordering sensitivity of each (line, K label, seed) cell run in several orders (``--orders``):
    accuracy over its orders (mean, min, max, population std), over all items and per subject when
    ``subjects`` maps item ids to one. Cells with a single order are left out."""
    scores = item_scores(results, f"correct_{metric}")
    scores = scores[scores["bank"] != "none"]
    scores = scores.assign(subject="all")
    if subjects:
        scores = pd.concat([scores, scores.assign(subject=scores["item_id"].map(subjects).fillna("?"))])
    out = []
    for keys, g in scores.groupby([*LINE, "k_label", "seed", "subject"], sort=True):
        per_order = g.groupby("order")["score"].mean()
        if len(per_order) < 2:
            continue
        out.append(dict(zip([*LINE, "k_label", "seed", "subject"], keys)) | {
            "metric": metric, "orders": len(per_order), "items": g["item_id"].nunique(),
            "mean": per_order.mean(), "min": per_order.min(), "max": per_order.max(), "std": per_order.std(ddof=0)})
    return pd.DataFrame(out)


def plot_orders(results: pd.DataFrame, path: Path, *, title: str, metric: str = "strict") -> Path:
    """Each order's accuracy as a dot, per (line, K label, seed) cell group run in several orders, with the
    mean as a bar: how far apart the same shots in other orders land."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = item_scores(results, f"correct_{metric}")
    scores = scores[scores["bank"] != "none"]
    per_order = scores.groupby([*LINE, "k_label", "seed", "order"], sort=True)["score"].mean().reset_index()
    groups = [(keys, g) for keys, g in per_order.groupby([*LINE, "k_label", "seed"], sort=True) if len(g) > 1]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(groups) + 2), 4.5))
    for x, ((bank, select, _, _, label, seed), g) in enumerate(groups):
        ax.bar(x, g["score"].mean(), width=0.6, alpha=0.25, color="tab:blue")
        spread = [x + (i - (len(g) - 1) / 2) * 0.3 / len(g) for i in range(len(g))]  # orders side by side
        ax.scatter(spread, g["score"], color="tab:blue", zorder=3, s=18)
    ax.set_xticks(range(len(groups)), [f"{line_label(k[0], k[1])}\nK={k[4]} seed {k[5]}" for k, _ in groups],
                  fontsize=7)
    ax.set_ylabel(f"accuracy ({metric}) of each order")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def order_spread_table(spread: pd.DataFrame) -> str:
    """The spread over orders as markdown, one row per line, K, seed and subject."""
    if spread.empty:
        return "(no cell was run in more than one order)"
    lines = ["| bank | K | seed | subject | orders | items | mean | min | max | std |", "|---" * 10 + "|"]
    for r in spread.itertuples():
        lines.append(f"| {line_label(r.bank, r.select)} | {r.k_label} | {r.seed} | {r.subject} | {r.orders} | "
                     f"{r.items} | {r.mean:.1%} | {r.min:.1%} | {r.max:.1%} | {r.std:.1%} |")
    return "\n".join(lines)


def with_zero_shot(summary: pd.DataFrame) -> pd.DataFrame:
    """Every line starts at the shared zero-shot result (K=0 uses no bank), as in the paper's plots.
    A summary written before selections were recorded reads as random selection."""
    summary = summary if "select" in summary else summary.assign(select="random")
    zero = summary[summary["bank"] == "none"]
    lines = summary[summary["bank"] != "none"][LINE].drop_duplicates()
    if zero.empty or lines.empty:
        return summary
    copies = [zero.assign(bank=b.bank, select=b.select, source=b.source, transfer=b.transfer)
              for b in lines.itertuples()]
    return pd.concat([summary[summary["bank"] != "none"], *copies], ignore_index=True)


def markdown_table(summary: pd.DataFrame, metric: str = "strict") -> str:
    """Accuracy (95% CI) with one row per bank and one column per K."""
    summary = with_zero_shot(summary)
    view = summary[summary["metric"] == metric]
    if view.empty:
        return "(no results)"
    ks = sorted(view["k_label"].unique(), key=label_key)
    lines = ["| bank | source | " + " | ".join(f"K={k}" for k in ks) + " |",
             "|---|---|" + "---|" * len(ks)]
    for (bank, select, source, transfer), g in view.groupby(LINE, sort=True):
        cells = {r.k_label: f"{r.accuracy:.1%} ({r.ci_low:.0%}-{r.ci_high:.0%}){_resolved(r)}" for r in g.itertuples()}
        label = f"{source} (transfer)" if transfer else source
        lines.append(f"| {line_label(bank, select)} | {label} | " + " | ".join(cells.get(k, "-") for k in ks) + " |")
    return "\n".join(lines)


def _resolved(row) -> str:
    """For a ``max`` cell, the K it stood for (a range when seeds differ)."""
    if row.k_label != "max":
        return ""
    low, high = int(row.k_min), int(row.k_max)
    return f" K={low}" if low == high else f" K={low}-{high}"


def prompt_tokens_table(summary: pd.DataFrame) -> str:
    """Mean (max) prompt tokens with one row per bank and one column per K label."""
    if "prompt_tokens" not in summary:
        return "(no prompt token counts)"
    view = with_zero_shot(summary)
    view = view[view["metric"] == "strict"]
    ks = sorted(view["k_label"].unique(), key=label_key)
    lines = ["| bank | " + " | ".join(f"K={k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
    for (bank, select), g in view.groupby(["bank", "select"], sort=True):
        cells = {r.k_label: f"{r.prompt_tokens:,.0f} ({r.prompt_tokens_max:,.0f})" for r in g.itertuples()}
        lines.append(f"| {line_label(bank, select)} | " + " | ".join(cells.get(k, "-") for k in ks) + " |")
    return "\n".join(lines)


def plot_figure(summary: pd.DataFrame, *, title: str, metric: str = "strict"):
    """Accuracy vs K, one line per bank with 95% CI error bars, on the log2 K axis of :mod:`flows.evaluate.kaxis`
    (each bank's ``max`` at the K it resolved to, marked and annotated): a matplotlib figure."""
    from flows.evaluate.kaxis import accuracy_figure

    view = with_zero_shot(summary)
    view = view[view["metric"] == metric]
    lines = [(line_label(bank, select) if bank == "none" else
              f"{source}{' (transfer)' if transfer else ''}: {line_label(bank, select)}", g)
             for (bank, select, source, transfer), g in view.groupby(LINE, sort=True)]
    return accuracy_figure(view, lines, title=title, ylabel=f"accuracy ({metric}), 95% CI over items")


def plot(summary: pd.DataFrame, path: Path, *, title: str, metric: str = "strict") -> Path:
    """:func:`plot_figure` written to ``path`` (PNG)."""
    import matplotlib.pyplot as plt

    from flows.evaluate.kaxis import DPI

    fig = plot_figure(summary, title=title, metric=metric)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")  # long legend labels stay whole
    plt.close(fig)
    return path
