"""The structured result of an eval sweep (flows.evaluate.results): summary.json beside summary.md, and the legacy reader."""
import json
from pathlib import Path

import pandas as pd
import pytest

from flows.evaluate.results import EvalResult, Skipped, parse_summary_lines, skipped_and_notes

SUMMARY = pd.DataFrame([{"bank": "gsm8k-ground-truth-abc", "source": "ground-truth", "transfer": False, "k": 4,
                         "k_label": "4", "metric": m, "items": 10, "seeds": 1, "accuracy": 0.5, "ci_low": 0.2,
                         "ci_high": 0.8, "prompt_tokens_mean": 900.0, "prompt_tokens_max": 950}
                        for m in ("strict", "flexible")])
SKIPPED = (Skipped("gsm8k-ground-truth-abc", 0, "max", "K=40 needs 33,000 prompt tokens"),
           Skipped("gsm8k-ground-truth-abc", 1, "8", "bank has 6 usable shots, fewer than K=8", "-similar-tfidf-o1"))


def test_a_result_written_to_a_folder_reads_back_from_summary_json_and_from_its_markdown(tmp_path):
    result = EvalResult("gsm8k", "fake", tmp_path, SUMMARY, SKIPPED, {"gsm8k-ground-truth-abc": 3, "other": 0})
    result.write(tmp_path)
    assert result.markdown() == (tmp_path / "summary.md").read_text().strip()
    assert result.markdown().startswith("## gsm8k: accuracy vs shots (fake)\n\nstrict:")
    assert "skipped gsm8k-ground-truth-abc-s1-similar-tfidf-o1-k8: bank has 6" in result.body()
    expected = (list(SKIPPED), ["overlap with the test split: gsm8k-ground-truth-abc: 3 shots excluded"])
    assert skipped_and_notes(tmp_path) == expected
    (tmp_path / "summary.json").unlink()  # a folder from before summary.json: its summary.md lines say the same
    assert skipped_and_notes(tmp_path) == expected
    assert pd.read_csv(tmp_path / "summary.csv")["accuracy"].tolist() == [0.5, 0.5]


def test_legacy_lines_parse_bank_labels_with_dashes_and_selection_suffixes():
    skipped, notes = parse_summary_lines("text\nskipped math-reinforced-074e7c829508-s0-kmax: K=0 fits\n"
                                         "skipped b-1-s2-diverse-minilm-k16: too small\n")
    assert skipped == [Skipped("math-reinforced-074e7c829508", 0, "max", "K=0 fits"),
                       Skipped("b-1", 2, "16", "too small", "-diverse-minilm")]
    assert notes == []


def test_a_damaged_summary_json_is_named(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"skipped": [{"bank": "b"}]}))
    with pytest.raises(ValueError, match=r"summary.json is not a summary.json written by manyshot"):
        skipped_and_notes(Path(tmp_path))
