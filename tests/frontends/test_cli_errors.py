"""Errors a newcomer can read, through real ``manyshot`` processes: one ``manyshot: error: ...`` line, the exit
code of the documented scheme (1 the command could not be carried out, 2 the command line is wrong, 141 a closed
pipe), no traceback, and bad input found before Prefect's temporary server starts."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from flows.runtime.banks import write_bank
from flows.cli import build_parser
from flows.cli_types import NON_NEGATIVE, POSITIVE, subcommands, temperature
from flows.core.schema import SHOT_SCHEMA, to_table
from generators.model_check import check_model
from generators.models import ModelNotAvailableError

ROOT = Path(__file__).resolve().parents[2]
SERVER_STARTED = "Starting temporary server"  # Prefect's log line when its temporary API server starts


def manyshot(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_HOME": str(cwd / "prefect")} | (env or {})
    environ.pop("PREFECT_API_URL", None)
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=300)


def one_error(proc: subprocess.CompletedProcess, code: int, *parts: str) -> str:
    """The process failed with ``code``, its stderr is the single error line (naming ``parts``), no traceback."""
    assert proc.returncode == code, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and SERVER_STARTED not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("manyshot: error: "), proc.stderr[-3000:]
    for part in parts:
        assert part in lines[0]
    return lines[0]


def shot(pid: str, rationale: str, answer: str) -> dict:
    return {"shot_id": f"{pid}:{rationale}", "problem_id": pid, "task": "gsm8k", "question": f"question {pid}?",
            "rationale": rationale, "answer": answer, "gold_answer": answer, "source": "reinforced",
            "dataset": "gsm8k:test-fixture", "split": "train", "created_at": datetime.now(timezone.utc),
            "run_id": "r1"}


def make_bank(path: Path, n: int = 3, text: str = "Add them.") -> str:
    write_bank(path, to_table([shot(f"g/{i}", f"{text}\nThe answer is {i}", str(i)) for i in range(n)],
                              SHOT_SCHEMA), {"config": {"task": "gsm8k", "mode": "reinforced"}})
    return str(path)


@pytest.fixture
def bank(tmp_path) -> str:
    return make_bank(tmp_path / "gsm8k-reinforced-aaaa.parquet")


def test_missing_unreadable_and_absent_banks(tmp_path, bank):
    one_error(manyshot("eval", "--task", "gsm8k", "--bank", "nope.parquet", "--shots", "0,4", cwd=tmp_path), 1,
              "no bank at nope.parquet")
    (tmp_path / "text.parquet").write_text("not parquet")
    (tmp_path / "cut.parquet").write_bytes(Path(bank).read_bytes()[:500])
    for name in ("text.parquet", "cut.parquet"):
        one_error(manyshot("eval", "--task", "gsm8k", "--bank", name, "--shots", "4", cwd=tmp_path), 1,
                  f"{name} is not a readable Parquet file")
    one_error(manyshot("eval", "--task", "gsm8k", "--shots", "0,4", cwd=tmp_path), 2,
              "--shots with a K above 0 needs at least one --bank")


def test_malformed_dataset_row(tmp_path, bank, data_dir):
    folder = tmp_path / "data" / "gsm8k"
    folder.mkdir(parents=True)
    rows = (data_dir / "gsm8k" / "test.jsonl").read_text().splitlines()[:3]
    (folder / "test.jsonl").write_text("\n".join(rows) + '\n{"question": "x", \n')
    one_error(manyshot("eval", "--task", "gsm8k", "--bank", bank, "--shots", "4", "--data-dir", str(tmp_path / "data"),
                       cwd=tmp_path), 1, "gsm8k/test.jsonl:4: not valid JSON")


@pytest.mark.parametrize("name", ["/nonexistent", "./my-modle"])
def test_model_that_is_no_directory_and_no_hub_id(tmp_path, name):
    one_error(manyshot("eval", "--task", "gsm8k", "--shots", "0", "--model", name, cwd=tmp_path), 1,
              f"no model directory or known model named {name!r}")


def test_unknown_hub_id_offline_or_without_network(tmp_path):
    args = ("bank", "build", "--mode", "reinforced", "--task", "gsm8k", "--limit", "2", "--model", "someone/no-model")
    one_error(manyshot(*args, cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"}), 1,
              "no model directory or known model named 'someone/no-model'", "HF_HUB_OFFLINE is set")
    unreachable = {"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}
    one_error(manyshot(*args, cwd=tmp_path, env=unreachable), 1, "127.0.0.1 cannot be reached (no network")


def test_check_model_in_process(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "weights"
    folder.mkdir()
    with pytest.raises(ModelNotAvailableError, match="is not a model directory \\(it has no config.json\\)"):
        check_model(str(folder))
    (folder / "config.json").write_text("{}")
    check_model(str(folder))
    with pytest.raises(ModelNotAvailableError, match="HF_HUB_OFFLINE is set"):
        check_model("someone/not-cached")


def test_unwritable_out(tmp_path, bank):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = str(blocker / "out")
    expected = f"cannot write --out {target}: {blocker} is a file, not a folder"
    one_error(manyshot("eval", "--task", "gsm8k", "--bank", bank, "--shots", "4", "--out", target,
                       "--endpoint", "http://127.0.0.1:9/v1", cwd=tmp_path), 1, expected)
    one_error(manyshot("bank", "build", "--mode", "ground-truth", "--task", "gsm8k", "--limit", "2", "--out", target,
                       cwd=tmp_path), 1, expected)
    one_error(manyshot("report", str(tmp_path), "--out", target, cwd=tmp_path), 1, expected)


def test_bank_list_names_the_unreadable_bank_and_a_missing_folder(tmp_path, bank):
    (tmp_path / "broken.parquet").write_bytes(Path(bank).read_bytes()[:500])
    proc = manyshot("bank", "list", str(tmp_path), cwd=tmp_path)
    one_error(proc, 1, f"1 of 2 banks in {tmp_path} could not be read: {tmp_path / 'broken.parquet'} is not a "
                       "readable Parquet file")
    assert proc.stdout.startswith(f"{bank}  task=gsm8k mode=reinforced shots=3")
    one_error(manyshot("bank", "list", str(tmp_path / "nowhere"), cwd=tmp_path), 1,
              f"no banks folder at {tmp_path / 'nowhere'}")


@pytest.mark.parametrize("args, expected", [
    (("eval", "--task", "gsm8k", "--limit", "-1"), "argument --limit: expected a positive integer, got -1"),
    (("eval", "--task", "gsm8k", "--seeds", "0"), "argument --seeds: expected a positive integer, got 0"),
    (("bank", "build", "--task", "gsm8k", "--mode", "reinforced", "--temperature", "-0.5"),
     "argument --temperature: expected a temperature >= 0, got -0.5"),
    (("bank", "diff", "a", "b", "--limit", "x"), "argument --limit: expected a non-negative integer, got 'x'"),
])
def test_numbers_out_of_range_are_usage_errors(tmp_path, args, expected):
    line = one_error(manyshot(*args, cwd=tmp_path), 2, expected)
    assert line.endswith(f"(see manyshot {args[0]}{' ' + args[1] if args[0] == 'bank' else ''} --help)")


def test_every_numeric_flag_is_range_checked():
    """No subcommand takes a bare int or float: each count, limit, seed or temperature has a range."""
    checked, bare = [], []
    for command in subcommands(build_parser()):
        for action in command._actions:
            if action.type in (int, float):
                bare.append(f"{command.prog} {action.option_strings}")
            if action.type in (POSITIVE, NON_NEGATIVE, temperature):
                checked.append(action.dest)
    assert not bare and len(checked) >= 20


@pytest.mark.server  # the process starts Prefect's temporary server and runs the flow
def test_reinforced_build_that_keeps_nothing_says_why(tmp_path):
    def cut_short(body):  # every sample stops at max_tokens, before an answer
        choices = [{"index": i, "finish_reason": "length", "message": {"role": "assistant", "content": "Let me"}}
                   for i in range(body.get("n", 1))]
        return 200, {"choices": choices, "usage": {"prompt_tokens": 7, "completion_tokens": 32}}

    server = FakeOpenAI(hook=cut_short)
    try:
        proc = manyshot("bank", "build", "--mode", "reinforced", "--task", "gsm8k", "--limit", "3", "--samples", "2",
                        "--max-tokens", "32", "--endpoint", server.url, "--out", str(tmp_path / "banks"), cwd=tmp_path)
    finally:
        server.close()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("manyshot: error: ")]
    assert errors == ["manyshot: error: no shot was kept (reinforced, 6 samples); no bank was written; 6 of 6 "
                      "responses were cut at --max-tokens 32: raise --max-tokens (e.g. 512)"]


@pytest.mark.server  # the process starts Prefect's temporary server and runs the flow
def test_failed_eval_leaves_no_empty_folder(tmp_path, bank):
    server = FakeOpenAI()
    try:
        proc = manyshot("eval", "--task", "gsm8k", "--bank", bank, "--shots", "4,max", "--select", "similar",
                        "--endpoint", server.url, "--out", str(tmp_path / "evals"), cwd=tmp_path)
    finally:
        server.close()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "manyshot: error: --shots max needs prompts that nest" in proc.stderr
    assert list((tmp_path / "evals").glob("*")) == []  # neither the eval folder nor its cells/


def test_closed_pipe_ends_quietly(tmp_path):
    a = make_bank(tmp_path / "a.parquet", 800, "A long rationale. " * 20)
    b = make_bank(tmp_path / "b.parquet", 800, "Another long rationale. " * 20)
    environ = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "bank", "diff", "--json", a, b], cwd=tmp_path,
                            env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.read(10).startswith(b"{")
    proc.stdout.close()  # as `| head` does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and err == b""


def test_debug_keeps_the_traceback_and_help_documents_exit_codes(tmp_path):
    proc = manyshot("eval", "--task", "gsm8k", "--bank", "nope.parquet", "--shots", "4", "--debug", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "manyshot: error: no bank at nope.parquet"
    help_text = manyshot("--help", cwd=tmp_path).stdout
    assert "exit codes:" in help_text and "130  interrupted by Ctrl-C" in help_text and "141" in help_text
    assert "manyshot exits 0 on success" in (ROOT / "README.md").read_text()
