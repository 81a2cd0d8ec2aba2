"""Accuracy tables with bootstrap confidence intervals, and the accuracy-vs-K plot."""
from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pandas as pd

from flows.shotcounts import label_key

GROUP = ["bank", "source", "transfer", "k_label"]


def with_labels(results: pd.DataFrame) -> pd.DataFrame:
    """Results with a K label on every row: the sweep's ("max") where set, else K itself."""
    given = results["k_label"] if "k_label" in results else pd.Series(None, index=results.index, dtype=object)
    return results.assign(k_label=given.where(given.notna(), results["k"].astype(str)))


def item_scores(results: pd.DataFrame, column: str) -> pd.DataFrame:
    """One score per (group, seed, item): the majority-vote answer's correctness over samples."""
    def vote(group: pd.DataFrame) -> float:
        answers = Counter(a for a in group["extracted"] if pd.notna(a))
        if not answers:
            return 0.0
        top = answers.most_common(1)[0][0]
        return float(group.loc[group["extracted"] == top, column].iloc[0])

    extracted = "extracted_strict" if column == "correct_strict" else "extracted_flexible"
    frame = with_labels(results).assign(extracted=results[extracted])
    rows = [(*keys, vote(g)) for keys, g in frame.groupby([*GROUP, "seed", "item_id"], sort=True)]
    return pd.DataFrame(rows, columns=[*GROUP, "seed", "item_id", "score"])


def bootstrap_ci(values: list[float], *, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    return means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per bank, source and K label (strict and flexible), 95% CI over items (averaged over seeds).

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
            per_seed = g.groupby("seed")["score"].mean()
            low, high = bootstrap_ci(per_item)
            out.append(dict(zip(GROUP, keys)) | sizes.loc[keys].to_dict() | {
                "metric": column.removeprefix("correct_"), "items": len(per_item), "seeds": len(per_seed),
                "accuracy": sum(per_item) / len(per_item), "ci_low": low, "ci_high": high,
                "seed_min": per_seed.min(), "seed_max": per_seed.max()})
    return pd.DataFrame(out)


def with_zero_shot(summary: pd.DataFrame) -> pd.DataFrame:
    """Every bank's line starts at the shared zero-shot result (K=0 uses no bank), as in the paper's plots."""
    zero = summary[summary["bank"] == "none"]
    banks = summary[summary["bank"] != "none"][["bank", "source", "transfer"]].drop_duplicates()
    if zero.empty or banks.empty:
        return summary
    copies = [zero.assign(bank=b.bank, source=b.source, transfer=b.transfer) for b in banks.itertuples()]
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
    for (bank, source, transfer), g in view.groupby(["bank", "source", "transfer"], sort=True):
        cells = {r.k_label: f"{r.accuracy:.1%} ({r.ci_low:.0%}-{r.ci_high:.0%}){_resolved(r)}" for r in g.itertuples()}
        label = f"{source} (transfer)" if transfer else source
        lines.append(f"| {bank} | {label} | " + " | ".join(cells.get(k, "-") for k in ks) + " |")
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
    for bank, g in view.groupby("bank", sort=True):
        cells = {r.k_label: f"{r.prompt_tokens:,.0f} ({r.prompt_tokens_max:,.0f})" for r in g.itertuples()}
        lines.append(f"| {bank} | " + " | ".join(cells.get(k, "-") for k in ks) + " |")
    return "\n".join(lines)


def plot(summary: pd.DataFrame, path: Path, *, title: str, metric: str = "strict") -> Path:
    """Accuracy vs K, one line per bank with 95% CI error bars.

    K values sit at equal spacing (the paper's log2 axis for 0, 4, 8, 16, ...), labelled with K; each
    line is shifted a little sideways so that overlapping error bars stay readable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    view = with_zero_shot(summary)
    view = view[view["metric"] == metric]
    ks = sorted(view["k_label"].unique(), key=label_key)
    position = {k: i for i, k in enumerate(ks)}
    lines = list(view.groupby(["bank", "source", "transfer"], sort=True))
    fig, ax = plt.subplots(figsize=(7, 4.8))
    for n, ((bank, source, transfer), g) in enumerate(lines):
        g = g.sort_values("k_label", key=lambda col: col.map(label_key))
        shift = (n - (len(lines) - 1) / 2) * 0.05
        err = [g["accuracy"] - g["ci_low"], g["ci_high"] - g["accuracy"]]
        label = f"{source}{' (transfer)' if transfer else ''}: {bank}"
        ax.errorbar([position[k] + shift for k in g["k_label"]], g["accuracy"], yerr=err, marker="o", capsize=3,
                    label=label)
    ax.set_xticks(range(len(ks)), [str(k) for k in ks])
    ax.set_xlabel("shots in prompt (K)")
    ax.set_ylabel(f"accuracy ({metric}), 95% CI over items")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
