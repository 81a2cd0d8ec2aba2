"""Banks as datasets: export with a dataset card, push-to-hub failing fast offline, and bank diff."""
import http.server
import json
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

import verifiers
from conftest import gsm8k_solver
from flows.runtime.banks import BankError, read_bank, write_bank
from flows.build.flow import build_bank
from flows.core.specs import BuildSpec, Rounds, Selection
from flows.cli import main
from flows.report.diff import DiffError, diff_banks, diff_tables
from flows.report.export import (DATA_FILE, ExportError, export_bank, public, public_dataset, push_to_hub,
                                 size_category)
from flows.core.schema import SHOT_SCHEMA, read_metadata, to_table
from generators.fake import FakeGenerator


@pytest.fixture(scope="module")
def bank(tmp_path_factory, prefect_harness, data_dir):
    """A small reinforced GSM8K bank built by the real flow with the scripted fake model."""
    rounds = Rounds(samples=2, temperature=0.7, retry_temperature=1.0, max_tokens=64, rounds=1)
    spec = BuildSpec(mode="reinforced", selection=Selection(task="gsm8k", limit=6), rounds=rounds, chunk_size=3)
    out = tmp_path_factory.mktemp("banks")
    return build_bank(spec, data_dir=str(data_dir), out=str(out), generator=FakeGenerator(gsm8k_solver()))


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    head, _, _ = card[4:].partition("\n---\n")
    return yaml.safe_load(head)


def test_export_loads_with_datasets_and_keeps_the_bank_metadata(bank, tmp_path):
    import datasets

    table, meta = read_bank(bank)
    dest = export_bank(bank, tmp_path / "export")
    assert sorted(p.name for p in dest.iterdir()) == ["README.md", "data"]
    ds = datasets.load_dataset(str(dest), split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == table.num_rows == 6
    assert ds.column_names == SHOT_SCHEMA.names
    assert sorted(ds["shot_id"]) == sorted(table.column("shot_id").to_pylist())
    assert ds[0]["rationale"] == table.column("rationale")[0].as_py()
    exported = read_metadata(pq.read_schema(dest / DATA_FILE))
    assert exported["config"] == meta["config"] and exported["report"] == meta["report"]
    assert exported["run_id"] == meta["run_id"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_dataset_card_front_matter_and_body(bank, tmp_path):
    from huggingface_hub import DatasetCard

    table, meta = read_bank(bank)
    dest = export_bank(bank, tmp_path / "export", repo_id="someone/gsm8k-shots")
    card = (dest / "README.md").read_text()
    front = front_matter(card)
    assert front["license"] == "mit"
    assert front["task_categories"] == ["text-generation", "question-answering"]
    assert front["size_categories"] == ["n<1K"]
    assert front["source_datasets"] == ["openai/gsm8k"]
    assert "GSM8K" in front["pretty_name"] and "reinforced" in front["tags"]
    assert front["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]
    assert DatasetCard.load(dest / "README.md").data.license == "mit"  # the hub library's own parser
    row = table.slice(0, 1).to_pylist()[0]
    for expected in (f"`{row['model']}`", row["template_id"], row["template_hash"], f"`{verifiers.VERSION}`",
                     meta["run_id"], meta["created_at"], "| problems tried | 6 |", '"mode": "reinforced"',
                     'load_dataset("someone/gsm8k-shots", split="train")', "gsm8k:openai/gsm8k (local copy)"):
        assert expected in card, expected
    assert json.loads(row["sampling"])["temperature"] == 0.7 and row["sampling"] in card


def test_dataset_card_has_no_machine_paths(bank, tmp_path, data_dir):
    dest = export_bank(bank, tmp_path / "deep" / "export")
    card = (dest / "README.md").read_text()
    for path in (str(data_dir.resolve()), str(data_dir), str(tmp_path), str(Path(bank).parent), os.getcwd()):
        assert path not in card, path
    assert 'load_dataset("export", split="train")  # the folder holding this README' in card
    assert public({"iterate_from": "/home/me/banks/b.parquet", "shots": [1, "/x/y"]}) == {
        "iterate_from": "b.parquet", "shots": [1, "y"]}
    assert public_dataset("gsm8k:/home/me/data", "train") == "gsm8k:openai/gsm8k (local copy)"
    assert public_dataset("mytask:/home/me/data", "train") == "mytask:data"
    assert public_dataset("gsm8k:hub", "train") == "gsm8k:hub"


@pytest.mark.parametrize("n, bucket", [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (12_000, "10K<n<100K"),
                                       (2_500_000, "1M<n<10M")])
def test_size_category_uses_the_hub_buckets(n, bucket):
    assert size_category(n) == bucket


def test_export_refuses_non_empty_folders_unless_forced(bank, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="other is not empty; pass --force"):
        export_bank(bank, other)
    with pytest.raises(ExportError, match="it holds notes.txt, which an export does not write"):
        export_bank(bank, other, force=True)
    assert (other / "notes.txt").read_text() == "mine"
    dest = export_bank(bank, tmp_path / "export")
    (dest / "README.md").write_text("stale")
    with pytest.raises(ExportError, match="not empty"):
        export_bank(bank, dest)
    export_bank(bank, dest, force=True)
    assert (dest / "README.md").read_text().startswith("---\n")
    (tmp_path / "empty").mkdir()
    assert (export_bank(bank, tmp_path / "empty") / DATA_FILE).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "export", "other"]  # no temp folders left


def test_push_to_an_unreachable_hub_fails_at_once_and_keeps_the_export(bank, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    dest = export_bank(bank, tmp_path / "export")
    start = time.monotonic()
    with pytest.raises(ExportError, match=r"http://127.0.0.1:9 is unreachable .*the export stays at .*"
                                          r"`hf upload someone/gsm8k-shots .*export --repo-type dataset`"):
        push_to_hub(dest, "someone/gsm8k-shots")
    assert time.monotonic() - start < 5
    start = time.monotonic()
    code = main(["bank", "export", bank, "--to", str(tmp_path / "cli"), "--push-to-hub", "someone/gsm8k-shots"])
    assert code == 1 and time.monotonic() - start < 10
    out, err = capsys.readouterr()
    assert f"exported {bank} to {tmp_path / 'cli'}" in out
    assert "manyshot: error: cannot push to the Hugging Face hub: http://127.0.0.1:9 is unreachable" in err
    assert (tmp_path / "cli" / DATA_FILE).is_file() and (tmp_path / "cli" / "README.md").is_file()


class Refusing(http.server.BaseHTTPRequestHandler):
    """A hub that answers every request with 401, to check that hub errors reach the user."""

    def _refuse(self):
        body = b'{"error": "Invalid credentials in Authorization header"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = _refuse

    def log_message(self, *args):
        pass


def test_push_reports_hub_errors_with_the_repo_id(bank, tmp_path, monkeypatch):
    from huggingface_hub import constants

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        dest = export_bank(bank, tmp_path / "export")
        with pytest.raises(ExportError, match=r"pushing .*export to dataset repo someone/gsm8k-shots at "
                                              r"http://127.0.0.1:\d+ failed: .*401 Unauthorized.* Invalid credentials in "
                                              r"Authorization header; the export stays at"):
            push_to_hub(dest, "someone/gsm8k-shots", token=False)
    finally:
        server.shutdown()
        server.server_close()
    assert (dest / DATA_FILE).is_file()


def test_push_in_offline_mode_names_the_variable(bank, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    dest = export_bank(bank, tmp_path / "export")
    with pytest.raises(ExportError, match="HF_HUB_OFFLINE is set; the export stays at"):
        push_to_hub(dest, "someone/gsm8k-shots")


def test_export_cli_errors_exit_1(bank, tmp_path, capsys):
    assert main(["bank", "export", str(tmp_path / "missing.parquet"), "--to", str(tmp_path / "x")]) == 1
    assert "no bank at" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a.txt").write_text("")
    assert main(["bank", "export", bank, "--to", str(tmp_path / "full")]) == 1
    assert "is not empty; pass --force" in capsys.readouterr().err


def shot(pid, rationale, answer, task="gsm8k"):
    return {"shot_id": f"{pid}:{rationale}", "problem_id": pid, "task": task, "question": f"question {pid}?",
            "rationale": rationale, "answer": answer, "gold_answer": answer, "source": "reinforced",
            "dataset": f"{task}:test-fixture", "split": "train", "created_at": datetime.now(timezone.utc),
            "run_id": "r1"}


@pytest.fixture
def versions(tmp_path):
    v1 = [shot("g/1", "Add.\nThe answer is 3", "3"), shot("g/2", "Step one.\nStep two.\nThe answer is 5", "5"),
          shot("g/3", "The answer is 7", "7")]
    v2 = [shot("g/1", "Add.\nThe answer is 3", "3"), shot("g/2", "Step one.\nStep 2, fixed.\nThe answer is 6", "6"),
          shot("g/4", "The answer is 9", "9"), shot("g/5", "The answer is 1", "1"), shot("g/5", "Also 1", "1")]
    paths = []
    for n, rows in ((1, v1), (2, v2)):
        path = tmp_path / f"job-v000{n}.parquet"
        write_bank(path, to_table(rows, SHOT_SCHEMA), {"config": {"task": "gsm8k"}, "version": n})
        paths.append(path)
    return paths


def test_diff_counts_and_rationale_diff(versions):
    diff = diff_banks(*versions)
    assert diff["counts"] == {"problems_added": 2, "problems_removed": 1, "problems_changed": 1,
                              "problems_unchanged": 1, "shots_added": 4, "shots_removed": 2}
    assert [e["problem_id"] for e in diff["added"]] == ["g/4", "g/5"]
    assert [e["problem_id"] for e in diff["removed"]] == ["g/3"]
    (changed,) = diff["changed"]
    assert changed["problem_id"] == "g/2" and changed["answers_before"] == ["5"] and changed["answers_after"] == ["6"]
    lines = changed["rationale_diff"].splitlines()
    assert lines[:2] == ["--- A g/2", "+++ B g/2"]
    assert {"-Step two.", "-The answer is 5", "+Step 2, fixed.", "+The answer is 6", " Step one."} <= set(lines)
    assert diff["a"]["shots"] == 3 and diff["b"]["problems"] == 4


def test_diff_of_a_bank_with_itself_is_empty(versions):
    table, _ = read_bank(versions[1])
    counts = diff_tables(table, table)["counts"]
    assert counts == {"problems_added": 0, "problems_removed": 0, "problems_changed": 0, "problems_unchanged": 4,
                      "shots_added": 0, "shots_removed": 0}


def test_diff_cli_text_and_json(versions, capsys):
    assert main(["bank", "diff", *map(str, versions)]) == 0
    out = capsys.readouterr().out
    assert "problems: 2 added, 1 removed, 1 changed, 1 unchanged" in out
    assert "  + g/4  answer 9  question g/4?" in out and "  - g/3  answer 7" in out
    assert "  ~ g/2  answer 5 -> 6" in out and "+Step 2, fixed." in out
    assert main(["bank", "diff", *map(str, versions), "--json"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert parsed["counts"]["problems_changed"] == 1 and parsed["b"]["path"] == str(versions[1])


def test_diff_refuses_banks_of_different_tasks_and_missing_banks(versions, tmp_path, capsys):
    math = tmp_path / "math.parquet"
    write_bank(math, to_table([shot("m/1", "The answer is 2", "2", task="math")], SHOT_SCHEMA), {})
    with pytest.raises(DiffError, match="holds gsm8k shots but .*math.parquet holds math shots"):
        diff_banks(versions[0], math)
    assert issubclass(DiffError, BankError)
    assert main(["bank", "diff", str(versions[0]), str(math)]) == 1
    assert "compares two versions of one task's bank" in capsys.readouterr().err
    assert main(["bank", "diff", str(versions[0]), str(tmp_path / "nope.parquet")]) == 1
    assert "no bank at" in capsys.readouterr().err
