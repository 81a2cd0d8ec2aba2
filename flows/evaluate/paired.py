"""Paired comparisons of cells scored on the same test items: bank against bank at the same K, and every K against
zero-shot (K=0).

All cells of a sweep run the same items, so the right test of a difference is a paired one: it looks at how the
two cells differ item by item, which is much tighter than asking whether two separate 95% CIs overlap.

Per cell and item the score is the one the accuracy tables use (:func:`flows.metrics.item_scores`: the
majority-vote answer's correctness over samples), averaged over the cell's runs (seeds and shot orders). Only
items both cells ran count (``items``). For each pair, ``a`` against baseline ``b``:

- ``difference`` = mean over items of ``a_i - b_i`` (= accuracy of a - accuracy of b on those items);
- ``ci_low``/``ci_high``: 95% paired percentile bootstrap of that mean. Items are resampled with replacement
  (``numpy.random.default_rng(seed)``), each resample keeping an item's two scores together; the seeds and samples
  are already averaged inside each item's score, so every resample compares the same runs;
- ``p_value``: exact two-sided McNemar test. ``a_better`` items have ``a_i > b_i``, ``b_better`` items
  ``a_i < b_i``; under "no difference" each of these ``n = a_better + b_better`` discordant items is equally likely
  to go either way, so ``p = min(1, 2 * sum_{i <= min(a_better, b_better)} C(n, i) / 2^n)``. With one seed and one
  sample the scores are 0/1 and this is the classic exact McNemar test on the discordant pairs. With several seeds
  it is the exact sign test on the per-item differences of the averaged scores (the same statistic, with no
  majority threshold to choose and no tie rule: an item counts when its two averages differ);
- ``discordance``: the share of items whose scores differ, ``(a_better + b_better) / items``;
- ``detectable``: :func:`detectable_difference` at that discordance and ``items``: the smallest difference the
  test would detect with 80% power at the 5% two-sided level.
"""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd

from flows.core.errors import UserError
from flows.evaluate.metrics import ZERO_SHOT, item_scores, line_label
from flows.evaluate.shotcounts import label_key

Z_ALPHA = 1.959963984540054  # two-sided 5% level
Z_POWER = 0.8416212335729143  # 80% power
COLUMNS = ["metric", "comparison", "k_label", "a", "a_source", "b", "b_source", "b_k_label", "items", "accuracy_a",
           "accuracy_b", "difference", "ci_low", "ci_high", "a_better", "b_better", "p_value", "discordance",
           "detectable"]


class PairedError(UserError, ValueError):
    """A reference that names no bank of the comparison."""


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant pairs (a binomial test of b against
    Binomial(b + c, 1/2)); 1.0 when there is no discordant pair."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2 ** n)  # int / int: exact even where 2**n overflows a float


def paired_bootstrap(a: np.ndarray, b: np.ndarray, *, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of ``mean(a - b)``, resampling items (index pairs) with replacement."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(diff) < 2:
        return (float(diff[0]), float(diff[0])) if len(diff) else (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return float(low), float(high)


def detectable_difference(items: int, discordance: float, *, z_alpha: float = Z_ALPHA,
                          z_power: float = Z_POWER) -> float:
    """The smallest difference in accuracy a paired (McNemar) test on ``items`` items detects with 80% power at
    the 5% two-sided level, when a share ``discordance`` of items differ between the two cells.

    The normal approximation for McNemar's test (Connor 1987) needs
    ``n = (z_a * sqrt(psi) + z_b * sqrt(psi - d^2))^2 / d^2`` items to detect a difference ``d`` at discordance
    ``psi``. Solved for ``d`` at ``n = items`` (the positive root of the quadratic):
    ``d = sqrt(psi) * (z_a * sqrt(n) + z_b * sqrt(n + z_b^2 - z_a^2)) / (n + z_b^2)``, about
    ``2.80 * sqrt(psi / n)`` for large n. NaN without discordant items (no rate to plan with) and below
    ``z_a^2 - z_b^2`` (3.1) items, where the quadratic has no root. A value above ``psi`` means no difference is
    detectable at that discordance (d cannot exceed psi).
    """
    if discordance <= 0 or items + z_power ** 2 - z_alpha ** 2 < 0:
        return math.nan
    n = items
    return math.sqrt(discordance) * (z_alpha * math.sqrt(n) + z_power * math.sqrt(n + z_power ** 2 - z_alpha ** 2)) \
        / (n + z_power ** 2)


def items_needed(difference: float, discordance: float, *, z_alpha: float = Z_ALPHA, z_power: float = Z_POWER) -> float:
    """The inverse of :func:`detectable_difference`: items a McNemar test needs to detect ``difference``."""
    return (z_alpha * math.sqrt(discordance) + z_power * math.sqrt(discordance - difference ** 2)) ** 2 \
        / difference ** 2


def compare(a: pd.Series, b: pd.Series, *, resamples: int = 2000, seed: int = 0) -> dict:
    """The paired statistics of two cells' per-item scores (Series indexed by item id) on their common items."""
    common = a.index.intersection(b.index)
    x, y = a.loc[common].to_numpy(float), b.loc[common].to_numpy(float)
    n = len(common)
    better, worse = int((x > y).sum()), int((x < y).sum())
    low, high = paired_bootstrap(x, y, resamples=resamples, seed=seed)
    discordance = (better + worse) / n if n else math.nan
    return {"items": n, "accuracy_a": x.mean() if n else math.nan, "accuracy_b": y.mean() if n else math.nan,
            "difference": (x - y).mean() if n else math.nan, "ci_low": low, "ci_high": high, "a_better": better,
            "b_better": worse, "p_value": mcnemar_exact(better, worse), "discordance": discordance,
            "detectable": detectable_difference(n, discordance)}


def cell_scores(results: pd.DataFrame, column: str) -> dict[tuple[str, str], tuple[str, pd.Series]]:
    """(line label, K label) -> (source, per-item score averaged over the cell's runs) for one metric column."""
    scores = item_scores(results, column)
    out = {}
    for (bank, select, source, k_label), g in scores.groupby(["bank", "select", "source", "k_label"], sort=True):
        out[line_label(bank, select), str(k_label)] = (source, g.groupby("item_id")["score"].mean())
    return out


def paired_differences(results: pd.DataFrame, *, resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Every paired comparison of a sweep's result rows (strict and flexible): each pair of bank lines at the same
    K label (``comparison`` "banks", ``a`` before ``b`` in label order) and each line's K against zero-shot
    (``comparison`` "zero-shot", ``b`` = "zero-shot" at ``b_k_label`` "0"). Columns: :data:`COLUMNS`."""
    rows = []
    for metric in ("strict", "flexible"):
        cells = cell_scores(results, f"correct_{metric}")
        zero = cells.get((ZERO_SHOT, "0"))
        banks = sorted((key for key in cells if key[0] != ZERO_SHOT), key=lambda key: (label_key(key[1]), key[0]))
        pairs = [(x, y, "banks") for x, y in combinations(banks, 2) if x[1] == y[1]]
        pairs += [(x, (ZERO_SHOT, "0"), "zero-shot") for x in banks if zero is not None]
        for (a, k_a), (b, k_b), kind in pairs:
            (a_source, a_scores), (b_source, b_scores) = cells[a, k_a], cells[b, k_b]
            stats = compare(a_scores, b_scores, resamples=resamples, seed=seed)
            rows.append({"metric": metric, "comparison": kind, "k_label": k_a, "a": a, "a_source": a_source, "b": b,
                         "b_source": b_source, "b_k_label": k_b} | stats)
    return pd.DataFrame(rows, columns=COLUMNS)


def read_paired(path) -> pd.DataFrame:
    """A ``paired.csv`` as :func:`paired_differences` returns it (K labels stay strings)."""
    return pd.read_csv(path, dtype={"k_label": str, "b_k_label": str})


def lines(paired: pd.DataFrame) -> dict[str, str]:
    """Bank line label -> source, of the lines a paired table compares (zero-shot left out)."""
    both = pd.concat([paired[["a", "a_source"]].set_axis(["line", "source"], axis=1),
                      paired[["b", "b_source"]].set_axis(["line", "source"], axis=1)])
    both = both[both["line"] != ZERO_SHOT].drop_duplicates("line")
    return dict(sorted(zip(both["line"], both["source"]), key=lambda kv: ("[" in kv[0], kv[0])))


def reference_line(paired: pd.DataFrame, wanted: str | None = None) -> str | None:
    """The line to compare the others against: ``wanted`` (a line label, or a bank label whose first line is
    taken), else the ground-truth bank, else a bank whose label or source says "human" or "cot", else the first
    line (random selection before the others). None when there is no bank line."""
    known = lines(paired)
    if wanted is not None:
        match = [line for line in known if line == wanted] or [line for line in known if line.startswith(f"{wanted} [")]
        if not match:
            raise PairedError(f"reference {wanted!r} is none of the banks compared: {', '.join(known) or 'none'}")
        return match[0]
    for rule in (lambda line, source: source == "ground-truth",
                 lambda line, source: any(w in f"{line} {source}".lower() for w in ("human", "cot"))):
        match = [line for line, source in known.items() if rule(line, source)]
        if match:
            return match[0]
    return next(iter(known), None)


def against(paired: pd.DataFrame, reference: str) -> pd.DataFrame:
    """The bank comparisons that involve ``reference``, turned so that ``b`` is the reference (``difference`` =
    other - reference; the CI and the better counts swap with it, p and the detectable difference stay)."""
    rows = paired[(paired["comparison"] == "banks") & ((paired["a"] == reference) | (paired["b"] == reference))]
    turn = rows["a"] == reference
    swapped = rows.copy()
    for x, y in (("a", "b"), ("a_source", "b_source"), ("accuracy_a", "accuracy_b"), ("a_better", "b_better")):
        swapped.loc[turn, [x, y]] = rows.loc[turn, [y, x]].to_numpy()
    for column, source in (("difference", "difference"), ("ci_low", "ci_high"), ("ci_high", "ci_low")):
        swapped.loc[turn, column] = 0.0 - rows.loc[turn, source]  # 0.0 - x: no "-0.0%" for a zero difference
    return swapped


def display_rows(paired: pd.DataFrame, reference: str | None, metric: str = "strict") -> list[list[str]]:
    """Table rows (K, line, baseline, items, accuracies, difference with its CI, a/b better, p, detectable):
    every line against the reference at the same K, then every line's K against zero-shot."""
    view = paired[paired["metric"] == metric]
    zero = view[view["comparison"] == "zero-shot"]
    chosen = [against(view, reference)] if reference is not None else []
    rows = []
    for r in pd.concat([*chosen, zero]).itertuples():
        baseline = "zero-shot (K=0)" if r.comparison == "zero-shot" else r.b
        rows.append([str(r.k_label), r.a, baseline, str(r.items), f"{r.accuracy_a:.1%}", f"{r.accuracy_b:.1%}",
                     f"{r.difference:+.1%} ({r.ci_low:+.1%} to {r.ci_high:+.1%})", f"{r.a_better}/{r.b_better}",
                     f"{r.p_value:.3g}", "-" if math.isnan(r.detectable) else f"{r.detectable:.1%}"])
    return rows


HEADER = ["K", "bank", "against", "items", "accuracy", "against's accuracy", "difference (95% paired CI)",
          "items better/worse", "McNemar p", "detectable (80% power)"]


def explanation(reference: str | None, metric: str = "strict") -> str:
    """What the columns of :func:`display_rows` mean."""
    return (f"{metric}, paired on the items both cells ran; reference: {reference or 'none'}. Difference = bank - "
            "against; CI: paired bootstrap over items; p: exact McNemar (sign test on per-item scores averaged over "
            "seeds); detectable: the smallest difference this test finds with 80% power at the 5% level, given the "
            "observed discordance.")


def markdown(paired: pd.DataFrame, wanted: str | None = None, metric: str = "strict") -> str:
    """The paired differences against ``wanted`` (:func:`reference_line`) as a markdown table, after a line on what
    the columns mean. A sweep checks its reference before it runs, so a wanted bank missing here ran no cell (all
    skipped): that is said, and the default reference taken."""
    try:
        reference, missing = reference_line(paired, wanted), ""
    except PairedError as exc:
        reference, missing = reference_line(paired), f"{exc} (it ran no cell); "
    rows = display_rows(paired, reference, metric)
    if not rows:
        return "(no two cells share items)"
    table = ["| " + " | ".join(HEADER) + " |", "|---" * len(HEADER) + "|"]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    return missing + explanation(reference, metric) + "\n\n" + "\n".join(table)
