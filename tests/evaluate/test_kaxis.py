"""The accuracy plot's K axis: each bank's ``max`` at its own K (starred, annotated) on a log2 axis; accuracy
axes from 0 to at most 1; the zero-shot line named "zero-shot" wherever it is shown."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from flows.evaluate.kaxis import position, tick_values
from flows.evaluate.metrics import markdown_table, plot_figure


def summary(rows: list[tuple[str, str, float, float]], spread: float = 0.08) -> pd.DataFrame:
    """Summary rows (bank, K label, resolved K, accuracy) for both metrics."""
    return pd.DataFrame([{"bank": bank, "source": "zero-shot" if bank == "none" else "ground-truth", "transfer": False,
                          "select": "random", "k_label": label, "k": k, "k_min": k, "k_max": k, "metric": metric,
                          "accuracy": acc, "ci_low": max(0.0, acc - spread), "ci_high": min(1.0, acc + spread)}
                         for bank, label, k, acc in rows for metric in ("strict", "flexible")])


@pytest.fixture
def figure():
    rows = [("none", "0", 0, 0.3)]
    rows += [(bank, str(k), k, 0.4) for bank in ("bank-a", "bank-b") for k in (4, 16, 64)]
    rows += [("bank-a", "max", 43, 0.5), ("bank-b", "max", 1, 0.35)]
    fig = plot_figure(summary(rows), title="t")
    yield fig.axes[0]
    plt.close(fig)


def test_each_banks_max_sits_at_its_own_k_between_the_sweeps_ks(figure):
    ax = figure
    stars = {line.get_color(): line.get_xdata()[0] for line in ax.get_lines() if line.get_marker() == "*"
             and len(line.get_xdata())}
    notes = {text.get_text(): text.get_color() for text in ax.texts}
    assert set(notes) == {"max=43", "max=1"}
    x43, x1 = stars[notes["max=43"]], stars[notes["max=1"]]
    ticks = dict(zip([t.get_text() for t in ax.get_xticklabels()], ax.get_xticks()))
    assert ticks["16"] < x43 < ticks["64"] and abs(x43 - position(43)) < 0.1  # log2: 43 is 0.57 of the way to 64
    assert ticks["0"] < x1 < ticks["4"] and abs(x1 - position(1)) < 0.1
    assert "43" not in ticks  # the annotation names it; ticks are the sweep's Ks and powers of 4
    assert [t.get_text() for t in ax.get_legend().get_texts()][-1].startswith("max: the bank's largest K")


def test_k_axis_is_log2_with_zero_one_step_left_of_one():
    assert [position(k) for k in (0, 1, 2, 4, 64)] == [0, 1, 2, 3, 7]
    assert tick_values([0, 2, 8], top=43) == [0, 1, 2, 4, 8, 16, 64]


@pytest.mark.parametrize("accuracy, top", [(0.0, 0.1), (0.3, 0.5), (0.97, 1.0)])
def test_accuracy_axis_starts_at_zero_and_ends_at_most_at_one(accuracy, top):
    fig = plot_figure(summary([("none", "0", 0, accuracy), ("bank-a", "4", 4, accuracy)],
                              spread=0.1 if accuracy else 0.0), title="t")
    assert fig.axes[0].get_ylim() == pytest.approx((0.0, top))
    plt.close(fig)


def test_zero_shot_only_results_say_zero_shot():
    rows = summary([("none", "0", 0, 0.3)])
    assert "| zero-shot | zero-shot | 30.0%" in markdown_table(rows)
    fig = plot_figure(rows, title="t")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["zero-shot"]
    plt.close(fig)
