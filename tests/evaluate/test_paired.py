"""Paired comparisons (flows.evaluate.paired): McNemar's exact test, the paired bootstrap, the detectable difference, and the
paired section an eval sweep writes."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import DATA_DIR
from flows.build import BuildSpec, Selection, build_bank
from flows.core.data import load_problems, select
from flows.evaluate import EvalError, EvalSpec, evaluate
from flows.evaluate.paired import (PairedError, against, detectable_difference, items_needed, markdown, mcnemar_exact,
                          paired_bootstrap, paired_differences, read_paired, reference_line)
from generators.fake import FakeGenerator


def test_mcnemar_exact_p_on_hand_computed_counts():
    assert mcnemar_exact(1, 9) == pytest.approx(2 * (1 + 10) / 2 ** 10) == pytest.approx(0.021484375)
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)  # two-sided
    assert mcnemar_exact(3, 9) == pytest.approx(2 * (1 + 12 + 66 + 220) / 2 ** 12)  # 0.146
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_exact(5, 5) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert 0 < mcnemar_exact(700, 800) < 0.02  # n = 1500: 2**n is far beyond a float, the ratio is not


def test_paired_bootstrap_is_seeded_contains_the_mean_and_has_the_analytic_width():
    a = np.array([1.0] * 30 + [0.0] * 10 + [1.0] * 25 + [0.0] * 35)
    b = np.array([0.0] * 30 + [1.0] * 10 + [1.0] * 25 + [0.0] * 35)  # 30 items solved by a only, 10 by b only
    diff = a - b
    low, high = paired_bootstrap(a, b, resamples=4000, seed=7)
    assert (low, high) == paired_bootstrap(a, b, resamples=4000, seed=7)
    assert diff.mean() == pytest.approx(0.2) and low < diff.mean() < high
    se = diff.std() / math.sqrt(len(diff))  # 0.6 / 10: a mean of 100 values with standard deviation 0.6
    assert high - low == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert paired_bootstrap(a[:1], b[:1]) == (1.0, 1.0)
    unpaired_width = 2 * 1.96 * math.sqrt(a.var() / 100 + b.var() / 100)  # what two separate CIs would add up to
    assert high - low < unpaired_width


def test_detectable_difference_on_a_known_case():
    # n = 100, discordance 0.2: the root of (n + zb^2) d^2 - 2 za sqrt(n psi) d + (za^2 - zb^2) psi = 0
    assert detectable_difference(100, 0.2) == pytest.approx(0.12382, abs=1e-5)
    assert items_needed(detectable_difference(100, 0.2), 0.2) == pytest.approx(100)
    assert detectable_difference(10 ** 6, 0.1) == pytest.approx((1.959964 + 0.841621) * math.sqrt(0.1 / 10 ** 6),
                                                                rel=1e-3)
    assert math.isnan(detectable_difference(50, 0.0)) and math.isnan(detectable_difference(3, 0.5))
    assert detectable_difference(4, 0.5) > 0.5  # four items: nothing detectable, the difference cannot exceed 0.5


def rows(bank: str, source: str, k: int, scores: dict[str, list[bool]]) -> list[dict]:
    """Result rows of one line at one K: per item, its correctness in seed 0, 1, ..."""
    return [{"bank": bank, "source": source, "transfer": False, "k": k, "seed": seed, "item_id": item, "sample": 0,
             "extracted_strict": "1", "correct_strict": ok, "extracted_flexible": "1", "correct_flexible": ok}
            for item, per_seed in scores.items() for seed, ok in enumerate(per_seed)]


def test_paired_differences_average_seeds_per_item_and_count_only_common_items():
    frame = pd.DataFrame(
        rows("none", "zero-shot", 0, {"1": [False], "2": [False], "3": [True], "4": [False], "5": [True]})
        + rows("gt", "ground-truth", 4, {"1": [True, True], "2": [True, False], "3": [True, True], "4": [False, False],
                                         "5": [True, True]})
        + rows("rf", "reinforced", 4, {"1": [True, True], "2": [True, True], "3": [False, False], "4": [True, False]}))
    paired = paired_differences(frame, resamples=500)
    strict = paired[paired["metric"] == "strict"].set_index(["a", "b"])
    banks = strict.loc[("gt", "rf")]  # items 1-4 only: rf has no item 5
    assert banks.comparison == "banks" and banks["items"] == 4
    assert banks.accuracy_a == pytest.approx(2.5 / 4) and banks.accuracy_b == pytest.approx(2.5 / 4)
    assert (banks.a_better, banks.b_better) == (1, 2)  # item 3 for gt; 2 (1 against 0.5) and 4 (0.5 against 0) for rf
    assert banks.difference == pytest.approx(0) and banks.p_value == pytest.approx(mcnemar_exact(1, 2)) == 1.0
    assert banks.discordance == pytest.approx(3 / 4)
    gt = strict.loc[("gt", "zero-shot")]
    assert gt.comparison == "zero-shot" and gt.b_k_label == "0" and gt["items"] == 5
    assert gt.difference == pytest.approx((1 + 0.5) / 5) and (gt.a_better, gt.b_better) == (2, 0)
    assert gt.p_value == pytest.approx(0.5) and gt.ci_low <= gt.difference <= gt.ci_high
    assert set(paired["metric"]) == {"strict", "flexible"} and len(paired) == 2 * 3


def test_reference_defaults_to_ground_truth_then_human_cot_then_the_first_bank():
    def paired(*sources: tuple[str, str]) -> pd.DataFrame:
        frame = pd.DataFrame([r for label, source in sources
                              for r in rows(label, source, 4, {"1": [True], "2": [False], "3": [True]})])
        return paired_differences(frame, resamples=50)

    assert reference_line(paired(("a", "reinforced"), ("z", "ground-truth"))) == "z"
    assert reference_line(paired(("a", "reinforced"), ("my-human-cot", "generated"))) == "my-human-cot"
    assert reference_line(paired(("b", "reinforced"), ("a", "unsupervised"))) == "a"
    assert reference_line(paired(("b", "reinforced"), ("a", "unsupervised")), "b") == "b"
    with pytest.raises(PairedError, match="'c' is none of the banks compared: a, b"):
        reference_line(paired(("b", "reinforced"), ("a", "unsupervised")), "c")
    text = markdown(paired(("b", "reinforced"), ("a", "unsupervised")), "c")  # c's cells were all skipped
    assert text.startswith("reference 'c' is none of the banks compared: a, b (it ran no cell); strict, paired on ")
    assert "reference: a." in text and "| 4 | b | a | 3 | 66.7% | 66.7% | +0.0% (+0.0% to +0.0%) | 0/0 | 1 | - |" in text


def test_against_turns_each_pair_so_the_reference_is_the_baseline():
    frame = pd.DataFrame(rows("a", "reinforced", 4, {"1": [True], "2": [True], "3": [False], "4": [True]})
                         + rows("b", "ground-truth", 4, {"1": [False], "2": [True], "3": [False], "4": [False]}))
    paired = paired_differences(frame, resamples=300)
    stored = paired[paired["metric"] == "strict"].iloc[0]
    assert (stored.a, stored.b) == ("a", "b")
    turned = against(paired[paired["metric"] == "strict"], "a").iloc[0]
    assert (turned.a, turned.b, turned.a_better, turned.b_better) == ("b", "a", 0, 2)
    assert turned.difference == -stored.difference == pytest.approx(-0.5)
    assert (turned.ci_low, turned.ci_high) == (-stored.ci_high, -stored.ci_low)
    assert turned.p_value == stored.p_value == pytest.approx(0.5)


def k_script():
    """Gold answers with 4 or more shots in the prompt; with fewer, only for questions whose gold answer is even."""
    answers = {p.question: p.answer for p in load_problems("gsm8k", "test", DATA_DIR)}

    def script(prompt, sample, rng):
        gold = answers[prompt[-1]["content"]]
        shots = sum(m["role"] == "assistant" for m in prompt)
        return f"The answer is {gold if shots >= 4 or int(gold) % 2 == 0 else int(gold) + 1}"
    return script


@pytest.mark.usefixtures("prefect_harness")
def test_an_eval_writes_paired_csv_and_a_paired_section(tmp_path):
    small = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=6)),
                       data_dir=str(DATA_DIR), out=str(tmp_path / "banks"))
    large = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=9)),
                       data_dir=str(DATA_DIR), out=str(tmp_path / "banks"))
    items = select(load_problems("gsm8k", "test", DATA_DIR), limit=8, seed=0)
    odd = sum(int(p.answer) % 2 for p in items)
    assert 0 < odd < 8  # the test needs both kinds of items
    spec = EvalSpec(task="gsm8k", banks=(small, large), shots=(0, 2, 4), seeds=2, limit=8, max_tokens=32,
                    reference=Path(large).stem)
    result = evaluate(spec, data_dir=str(DATA_DIR), out=str(tmp_path / "evals"), generator=FakeGenerator(k_script()))
    paired = read_paired(Path(result.folder) / "paired.csv")
    strict = paired[paired["metric"] == "strict"]
    assert len(strict) == 2 + 4  # the two banks at K=2 and K=4; each bank's K=2 and K=4 against zero-shot
    at4 = strict[(strict["comparison"] == "zero-shot") & (strict["k_label"] == "4")]
    assert (at4["items"] == 8).all() and (at4["a_better"] == odd).all() and (at4["b_better"] == 0).all()
    assert at4["difference"].to_numpy() == pytest.approx([odd / 8] * 2)
    assert at4["p_value"].to_numpy() == pytest.approx([2 / 2 ** odd] * 2)
    same = strict[strict["comparison"] == "banks"]
    assert (same["difference"] == 0).all() and (same["p_value"] == 1).all() and same["detectable"].isna().all()
    text = (Path(result.folder) / "summary.md").read_text()
    assert "### Paired differences" in text and f"reference: {Path(large).stem}." in text
    assert (f"| 4 | {Path(small).stem} | zero-shot (K=0) | 8 | 100.0% | {1 - odd / 8:.1%} | +{odd / 8:.1%} "
            in text)
    assert f"| 2 | {Path(small).stem} | {Path(large).stem} | 8 | " in text  # the other bank against the reference
    with pytest.raises(EvalError, match="--reference 'gt' is none of the banks"):
        evaluate(EvalSpec(task="gsm8k", banks=(small,), shots=(0, 2), limit=8, reference="gt"),
                 data_dir=str(DATA_DIR), out=str(tmp_path / "evals"), generator=FakeGenerator(k_script()))
