"""bench/peers.py's own parts that need no model: the peer's task file and the paired count."""
import re
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import peers  # noqa: E402


def test_the_peer_task_file_reads_the_two_splits_with_the_asked_sampler(tmp_path):
    data = {"test": tmp_path / "test.jsonl", "shots": {(0, 1): tmp_path / "shots.jsonl"}}
    folder, name = peers.peer_task(tmp_path, data, 0, 1, "first_n", 256)
    task = yaml.safe_load((folder / f"{name}.yaml").read_text())
    assert task["task"] == name == "manyshot_gsm8k_first_n_b0_s1"
    assert task["dataset_kwargs"]["data_files"] == {"test": str(data["test"]), "train": str(data["shots"][0, 1])}
    assert (task["fewshot_config"]["sampler"], task["generation_kwargs"]["max_gen_toks"]) == ("first_n", 256)
    assert (task["doc_to_text"], task["doc_to_target"]) == ("{{question}}", "{{target}}")
    strict = task["filter_list"][0]["filter"][0]["regex_pattern"]
    assert re.search(strict, "so 2 + 3 = 5.\nThe answer is -1,234").group(1) == "-1,234"
    assert re.search(strict, "The answer is forty") is None


def test_paired_counts_items_both_ran():
    ours = {"a": True, "b": True, "c": False, "d": False, "e": True}
    theirs = {"a": True, "b": False, "c": True, "d": False}
    assert peers.paired(ours, theirs) == {"items": 4, "both": 1, "manyshot_only": 1, "peer_only": 1, "agree": 2}
