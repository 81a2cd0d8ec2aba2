"""The K axis of the accuracy and prompt-token plots, and the accuracy plot itself.

K sits on a log2 axis (0 one step left of K=1), so every K is placed by its value: a bank's ``max``, resolved
to its own K (43, say), is drawn there, between 16 and 64, as a star annotated ``max=43``; another bank's
``max`` (K=1) sits at 1. Ticks are the sweep's Ks and the powers of 4 up to the largest K shown. Accuracy
axes run from 0 to at most 1. Figures are sized and lettered to be read at full page width (about 1200 px).
"""
from __future__ import annotations

import math
from typing import Iterable

import pandas as pd

FIGSIZE = (10, 5.6)  # inches; at DPI, 1200 px wide: the report shows it at full content width
DPI = 120
FONT = {"font.size": 12, "axes.titlesize": 14, "axes.labelsize": 13, "xtick.labelsize": 12,
        "ytick.labelsize": 12, "legend.fontsize": 11}
MAX_MARKER = {"marker": "*", "markersize": 16, "linestyle": "none"}


def position(k: float) -> float:
    """Where K sits on the axis: 0 at 0, else 1 + log2(K)."""
    return 0.0 if k <= 0 else 1.0 + math.log2(k)


def tick_values(ks: Iterable[int], top: float) -> list[int]:
    """The numeric Ks of the sweep and the powers of 4 up to the first one at or above ``top``, the largest K
    shown (a ``max`` point's K gets no tick of its own: its annotation names it)."""
    ks, powers = list(ks), [1]
    while powers[-1] < top:
        powers.append(powers[-1] * 4)
    return sorted(set(ks) | (set(powers) if top > 0 else set()))


def resolved(low: float, high: float) -> str:
    """The annotation of a ``max`` point: ``max=43``, or ``max=40-43`` when its seeds resolved differently."""
    low, high = int(round(low)), int(round(high))
    return f"max={low}" if low == high else f"max={low}-{high}"


def draw_line(ax, points: pd.DataFrame, *, color: str, label: str, shift: float = 0.0, yerr: bool = True) -> None:
    """One line: columns ``k`` (the resolved K), ``k_label``, ``y`` and, with ``yerr``, ``low``/``high``; optional
    ``k_min``/``k_max``. Numeric labels are joined in K order; ``max`` points are stars at their own K."""
    points = points.sort_values("k")
    is_max = ~points["k_label"].astype(str).str.isdigit()
    for part, style in ((points[~is_max], {"marker": "o", "markersize": 7}), (points[is_max], MAX_MARKER)):
        if part.empty:
            continue
        err = [part["y"] - part["low"], part["high"] - part["y"]] if yerr else None
        ax.errorbar([position(k) + shift for k in part["k"]], part["y"], yerr=err, capsize=4, color=color,
                    label=label, clip_on=False, zorder=3, **style)  # points at 0 sit on the axis, unclipped
        label = None  # one legend entry per line
    for r in points[is_max].itertuples():
        low, high = (getattr(r, name, r.k) for name in ("k_min", "k_max"))
        text = resolved(low if pd.notna(low) else r.k, high if pd.notna(high) else r.k)
        ax.annotate(text, (position(r.k) + shift, r.y), xytext=(8, 6), textcoords="offset points", color=color,
                    fontsize=11, fontweight="bold")


def set_k_axis(ax, points: pd.DataFrame) -> None:
    """Ticks and limits for ``points`` (columns ``k``, ``k_label``)."""
    numeric = sorted({int(label) for label in points["k_label"].astype(str) if label.isdigit()})
    ticks = tick_values(numeric or [0], max(points["k"], default=0))
    ax.set_xticks([position(k) for k in ticks], [str(k) for k in ticks])
    ax.set_xlim(position(ticks[0]) - 0.4, position(ticks[-1]) + 0.6)
    ax.set_xlabel("shots in prompt (K, log scale)")


def max_legend_entry(has_max: bool) -> list:
    """A legend handle explaining the star, when some line has a ``max`` point."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], color="0.3", label="max: the bank's largest K that fits (K annotated)",
                   **MAX_MARKER)] if has_max else []


def accuracy_top(values: Iterable[float]) -> float:
    """The top of an accuracy axis: a little above the highest value (CI bound), at least 0.1, at most 1."""
    finite = [v for v in values if pd.notna(v)]
    high = max(finite, default=1.0)
    return min(1.0, max(0.1, math.ceil((high + 0.05) * 10) / 10))


def accuracy_figure(view: pd.DataFrame, lines: list[tuple[str, pd.DataFrame]], *, title: str, ylabel: str):
    """The accuracy-vs-K figure of ``lines`` (legend label, summary rows with k, k_label, accuracy, ci_low,
    ci_high); each line shifted a little sideways so that overlapping error bars stay readable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    with plt.rc_context(FONT):
        fig, ax = plt.subplots(figsize=FIGSIZE)
        for n, (label, g) in enumerate(lines):
            points = g.assign(y=g["accuracy"], low=g["ci_low"], high=g["ci_high"])
            draw_line(ax, points, color=f"C{n % 10}", label=label, shift=(n - (len(lines) - 1) / 2) * 0.06)
        set_k_axis(ax, view)
        ax.set_ylim(0, accuracy_top([*view.get("ci_high", []), *view.get("accuracy", [])]))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        has_max = bool(len(view)) and (~view["k_label"].astype(str).str.isdigit()).any()
        handles = ax.get_legend_handles_labels()[0] + max_legend_entry(has_max)
        if handles:
            ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
        fig.tight_layout()
    return fig
