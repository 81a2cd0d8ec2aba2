"""The BBH results page's tables and plot from a finished `manyshot ablate configs/paper-bbh.toml` folder.

    .venv/bin/python scripts/bbh_table.py runs/ablation-paper-bbh [--plot docs/results/bbh.png] [--metric strict]

Prints markdown: per task and source, accuracy at each K label, with the average over tasks; then, per task, each
many-shot source at K=max against the human 3-shot CoT line, paired (difference, 95% paired bootstrap CI, McNemar p),
read from the ablation's paired.csv. Nothing is recomputed: the numbers are the ablation's own.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

SOURCES = ["human-cot", "ground-truth", "unsupervised", "reinforced"]  # the paper's lines, human CoT first
SHOWN = {"human-cot": "human 3-shot CoT", "ground-truth": "ground truth (answers only)",
         "unsupervised": "unsupervised", "reinforced": "reinforced"}


def task_name(eval_task: str) -> str:
    return eval_task.split("/")[-1].removeprefix("bbh-")


def accuracy_table(summary: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, list[str]]:
    rows = summary[summary.metric == metric].copy()
    rows["task"] = rows.eval_task.map(task_name)
    labels = sorted(rows.k_label.astype(str).unique(), key=lambda k: (k == "max", int(k) if k.isdigit() else 0))
    table = rows.pivot_table(index=["task", "source"], columns="k_label", values="accuracy", aggfunc="first")
    return table.reindex(columns=labels), labels


def task_means(table: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Per source and K label the mean over tasks, NaN where a task has no such cell (e.g. a bank smaller than K,
    skipped): an average over fewer tasks would not compare with the others."""
    tasks = table.index.get_level_values(0).nunique()
    counts = table.groupby(level="source").count()
    return table.groupby(level="source").mean().where(counts == tasks), tasks


def markdown(summary: pd.DataFrame, paired: pd.DataFrame | None, metric: str) -> str:
    table, labels = accuracy_table(summary, metric)
    ks = summary[summary.metric == metric].assign(task=lambda d: d.eval_task.map(task_name))
    shown_k = ks.pivot_table(index=["task", "source"], columns="k_label", values="k", aggfunc="first")
    out = [f"Accuracy ({metric}) on the 100 held-out problems per task; `max` in brackets is the K it resolved to; "
           "`-`: no such cell (a bank with fewer shots than K); an average only where every task has the cell.", "",
           "| task | source | " + " | ".join(f"K={k}" for k in labels) + " |", "|---|---|" + "---|" * len(labels)]
    for task in sorted(table.index.get_level_values(0).unique()):
        for source in SOURCES:
            if (task, source) not in table.index:
                continue
            cells = []
            for k in labels:
                acc = table.loc[(task, source), k]
                if pd.isna(acc):
                    cells.append("-")
                    continue
                resolved = shown_k.loc[(task, source), k] if k == "max" else None
                cells.append(f"{100 * acc:.0f}%" + (f" ({int(resolved)})" if resolved is not None else ""))
            out.append(f"| {task} | {SHOWN[source]} | " + " | ".join(cells) + " |")
    means, tasks = task_means(table)
    for source in SOURCES:
        if source in means.index:
            cells = ["-" if pd.isna(v) else f"{100 * v:.1f}%" for v in means.loc[source, labels]]
            out.append(f"| **average of {tasks}** | {SHOWN[source]} | " + " | ".join(cells) + " |")
    if paired is not None:
        out += ["", f"Paired against the human 3-shot CoT ({metric}, K=max of each source against the 3-shot prompt, "
                "same 100 items): difference in points, 95% paired bootstrap CI, McNemar exact p, items each way.", "",
                "| task | source | difference | 95% CI | p | better / worse |", "|---|---|---|---|---|---|"]
        p = paired[(paired.metric == metric) & (paired.comparison == "banks") & (paired.k_label == "max")]
        for _, r in p.sort_values(["eval_task", "a_source"]).iterrows():
            a, b, sign = (r.a_source, r.b_source, 1) if r.b_source == "human-cot" else (r.b_source, r.a_source, -1)
            if b != "human-cot":
                continue
            low, high = sorted((sign * r.ci_low, sign * r.ci_high))
            better, worse = (r.a_better, r.b_better) if sign == 1 else (r.b_better, r.a_better)
            out.append(f"| {task_name(r.eval_task)} | {SHOWN[a]} | {points(sign * r.difference)} | "
                       f"[{points(low)}, {points(high)}] | {r.p_value:.3g} | {better} / {worse} |")
    return "\n".join(out)


def points(share: float) -> str:
    """A difference in whole points with its sign; rounded before formatting, so a difference that rounds to zero
    (including float noise such as -1e-17) reads +0, never -0."""
    return f"{round(100 * share):+d}"


def plot(summary: pd.DataFrame, path: Path, metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary[summary.metric == metric].assign(task=lambda d: d.eval_task.map(task_name))
    tasks = sorted(rows.task.unique())
    table, labels = accuracy_table(summary, metric)
    means, _ = task_means(table)
    fig, axes = plt.subplots(1, len(tasks) + 1, figsize=(3.6 * (len(tasks) + 1), 3.4), squeeze=False)
    average = axes[0][-1]
    for source in SOURCES[1:]:
        if source in means.index:
            average.plot(range(len(labels)), 100 * means.loc[source, labels], marker="o", label=SHOWN[source])
    if "human-cot" in means.index:
        average.axhline(100 * means.loc["human-cot"].dropna().iloc[0], color="black", linestyle="--",
                        label=SHOWN["human-cot"])
    average.set_xticks(range(len(labels)), [f"K={k}" for k in labels])
    average.set_title(f"average of {len(tasks)} tasks", fontsize=10)
    average.set_ylim(0, 100)
    for ax, task in zip(axes[0][:-1], tasks):
        t = rows[rows.task == task]
        for source in SOURCES[1:]:
            line = t[t.source == source].sort_values("k")
            if len(line):
                ax.errorbar(line.k, 100 * line.accuracy, yerr=[100 * (line.accuracy - line.ci_low),
                                                              100 * (line.ci_high - line.accuracy)],
                            marker="o", capsize=3, label=SHOWN[source])
        human = t[t.source == "human-cot"]
        if len(human):
            ax.axhline(100 * human.accuracy.iloc[0], color="black", linestyle="--", label=SHOWN["human-cot"])
        ax.set_xscale("log")
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("shots K (log)")
        ax.set_ylim(0, 100)
    axes[0][0].set_ylabel(f"accuracy % ({metric})")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the ablation folder (runs/ablation-paper-bbh)")
    parser.add_argument("--metric", default="strict", choices=("strict", "flexible"))
    parser.add_argument("--plot", type=Path, help="write the per-task accuracy-vs-K plot here (PNG)")
    args = parser.parse_args()
    summary = pd.read_csv(args.folder / "summary.csv")
    paired_path = args.folder / "paired.csv"
    paired = pd.read_csv(paired_path) if paired_path.exists() else None
    print(markdown(summary, paired, args.metric))
    if args.plot:
        plot(summary, args.plot, args.metric)
        print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
