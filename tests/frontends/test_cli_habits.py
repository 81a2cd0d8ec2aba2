"""A CLI that fits its users' habits (issue 23.4): --version, help with defaults and working examples, --out that
says what it is, --quiet and --log-level everywhere, bank list/show --json, eval --config / --name / latest, model
settings as flags, and the progress bar's "loading model"."""
from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from flows.cli import build_parser
from flows.cli_eval import apply_model_settings, link_run, merged, read_config
from flows.cli_options import EXAMPLES, LOG_LEVELS, MODEL_SETTINGS, _commands
from flows.config import ConfigError
from flows.core.schema import SHOT_SCHEMA, to_table
from flows.runtime import logs
from flows.runtime.banks import write_bank
from flows.runtime.progress import Progress
from flows.runtime.tracker import Renderer

ROOT = Path(__file__).resolve().parents[2]


def manyshot(*args: str, cwd: Path, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_HOME": str(cwd / "prefect")} | (env or {})
    environ.pop("PREFECT_API_URL", None)
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=timeout)


def leaf_commands() -> list[tuple[str, object]]:
    return [(path, p) for path, p in _commands(build_parser()) if path not in ("bank", "task", "analyze")]


def test_version(tmp_path):
    from importlib.metadata import version

    proc = manyshot("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"manyshot {version('manyshot')}"


def test_top_level_help_has_no_rst_markup(tmp_path):
    proc = manyshot("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for markup in ("``", ":mod:", ":func:", ":class:", ":data:"):
        assert markup not in proc.stdout, markup
    assert "--quiet" in proc.stdout and "--log-level" in proc.stdout and "exit codes:" in proc.stdout


def test_eval_help_shows_defaults_examples_and_what_out_is(tmp_path):
    proc = manyshot("eval", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    for part in ("--limit LIMIT test questions evaluated (default: 50)", "(default: 0,4)", "(default: 512)",
                 "the root of eval folders", "DIR/latest", "--name NAME", "--config TOML", "--max-model-len TOKENS",
                 "examples: manyshot eval --task gsm8k"):
        assert part in text, part


@pytest.mark.parametrize("path", sorted(EXAMPLES))
def test_every_command_has_examples_that_parse(path):
    commands = dict(_commands(build_parser()))
    help_text = commands[path].format_help()
    assert "examples:" in help_text
    for line in EXAMPLES[path]:
        words = shlex.split(line, comments=True)
        assert words[0] == "manyshot" and line in help_text
        build_parser().parse_args(words[1:])  # a usage error would exit


def test_every_out_option_says_what_it_is():
    kinds = {"bank build": "folder of banks", "eval": "root of eval folders", "ablate": "root of the ablation",
             "run": "root of the job", "report": "HTML file"}
    commands = dict(_commands(build_parser()))
    for path, p in commands.items():
        outs = [a for a in p._actions if "--out" in a.option_strings]
        if outs:
            assert kinds[path] in " ".join(outs[0].help.split()), path
    assert set(kinds) <= set(commands)


@pytest.mark.parametrize("level", LOG_LEVELS)
def test_quiet_and_log_level_on_every_subcommand(level):
    parser = build_parser()
    for path, p in leaf_commands():
        options = {o for a in p._actions for o in a.option_strings}
        assert {"--quiet", "--log-level", "--debug"} <= options, path
    args = parser.parse_args(["task", "list", "--log-level", level.lower(), "--quiet"])
    assert args.log_level == level and args.quiet
    assert parser.parse_args(["--log-level", level, "task", "list"]).log_level == level


def test_quiet_process_prints_the_result_only(tmp_path):
    loud = manyshot("task", "list", cwd=tmp_path)
    quiet = manyshot("task", "list", "--quiet", cwd=tmp_path)
    assert loud.returncode == quiet.returncode == 0
    assert quiet.stdout == loud.stdout and "gsm8k" in quiet.stdout and quiet.stderr == ""
    bad = manyshot("task", "list", "--log-level", "chatty", cwd=tmp_path)
    assert bad.returncode == 2 and "invalid choice: 'CHATTY'" in bad.stderr


def test_log_levels_reach_prefect_manyshot_and_warnings(monkeypatch):
    for name in ("PREFECT_LOGGING_LEVEL", "PREFECT_SERVER_LOGGING_LEVEL", "MANYSHOT_PROGRESS", "VLLM_LOGGING_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    saved = {name: logging.getLogger(name).level for name in (*logs.OWN_LOGGERS, None)}
    try:
        assert logs.configure("DEBUG", quiet=False) == "DEBUG"
        assert os.environ["PREFECT_LOGGING_LEVEL"] == os.environ["VLLM_LOGGING_LEVEL"] == "DEBUG"
        assert "MANYSHOT_PROGRESS" not in os.environ
        assert logs.configure("INFO", quiet=True) == "ERROR"
        assert os.environ["PREFECT_LOGGING_LEVEL"] == "ERROR" and os.environ["MANYSHOT_PROGRESS"] == "0"
        assert os.environ["PREFECT_SERVER_LOGGING_LEVEL"] == "ERROR"
        logs.apply("INFO")
        assert logging.getLogger("flows").level == logging.getLogger("prefect").level == logging.INFO
        assert logging.getLogger().level == logging.WARNING  # other libraries: warnings and errors
        logs.apply("ERROR")
        assert logging.getLogger("generators").level == logging.getLogger().level == logging.ERROR
    finally:
        logging.captureWarnings(False)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def test_log_handlers_on_the_terminal_go_through_the_live_display(monkeypatch):
    """A plain stream handler on the real stderr (vLLM's kind) writes through rich's proxy while the display is
    up, so that a log line is printed above the bar instead of into it; it gets its stream back afterwards."""
    from flows.runtime.progress_rich import RichRenderer
    from flows.runtime.tracker import Tracker

    from rich.console import Console

    handler = logging.StreamHandler(sys.__stderr__)
    styled = logging.StreamHandler(sys.__stderr__)  # Prefect's kind: a rich console of its own
    styled.console = Console(file=sys.__stderr__)
    logger = logging.getLogger("manyshot-test-engine")
    logger.addHandler(handler)
    logger.addHandler(styled)
    try:
        renderer = RichRenderer()
        tracker = Tracker("eval", 3, "cells")
        renderer.opened(tracker)
        try:
            assert handler.stream is sys.stderr and sys.stderr is not sys.__stderr__  # rich's redirecting proxy
            assert styled.console.file is not sys.__stderr__ and styled.console.file.proxy is sys.stderr
        finally:
            renderer.closed(tracker)
        assert handler.stream is sys.__stderr__ and styled.console.file is sys.__stderr__
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(styled)


def test_the_bar_says_loading_model_while_a_model_loads():
    now = [0.0]
    progress = Progress(Renderer(), clock=lambda: now[0])
    tracker = progress.start(4, "cells", "eval")
    with progress.loading():
        now[0] = 30.0
        assert "loading model" in tracker.fields() and "ETA ?" not in tracker.fields()
    assert "ETA ?" in tracker.fields() and "loading model" not in tracker.fields()
    progress.advance()
    with progress.loading():  # once a unit is done the ETA is known, and shown
        assert tracker.fields()[-1].startswith("ETA ")


def shot(pid: str, answer: str) -> dict:
    return {"shot_id": f"s-{pid}", "problem_id": pid, "task": "gsm8k", "question": f"question {pid}?",
            "rationale": f"Add.\nThe answer is {answer}", "answer": answer, "gold_answer": answer,
            "source": "ground-truth", "dataset": "gsm8k:/home/someone/data", "split": "train",
            "created_at": datetime.now(timezone.utc), "run_id": "r1"}


def test_bank_list_and_show_json(tmp_path):
    banks = tmp_path / "banks"
    banks.mkdir()
    path = banks / "gsm8k-ground-truth-abc.parquet"
    write_bank(path, to_table([shot("g/1", "3"), shot("g/2", "5")], SHOT_SCHEMA),
               {"config": {"task": "gsm8k", "mode": "ground-truth"}, "run_id": "r1"})
    listed = manyshot("bank", "list", str(banks), "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    doc = json.loads(listed.stdout)
    assert doc["folder"] == str(banks) and doc["unreadable"] == {}
    assert [(b["path"], b["task"], b["mode"], b["shots"]) for b in doc["banks"]] == [(str(path), "gsm8k",
                                                                                      "ground-truth", 2)]
    shown = manyshot("bank", "show", str(path), "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert (doc["shots"], doc["problems"], doc["sources"], doc["run_id"]) == (2, 2, {"ground-truth": 2}, "r1")
    assert doc["config"] == {"task": "gsm8k", "mode": "ground-truth"} and doc["sample"][0]["shot_id"] == "s-g/1"
    (banks / "broken.parquet").write_text("not parquet")
    broken = manyshot("bank", "list", str(banks), "--json", cwd=tmp_path)
    assert broken.returncode == 1 and list(json.loads(broken.stdout)["unreadable"]) == [str(banks / "broken.parquet")]


def test_eval_config_file_reads_like_an_evals_entry(tmp_path):
    (tmp_path / "cfg").mkdir()
    config = tmp_path / "cfg" / "eval.toml"
    config.write_text('task = "gsm8k"\nbanks = ["banks/a.parquet", "/abs/b.parquet"]\nshots = [0, 4, "max"]\n'
                      'limit = 30\nmax_model_len = 2048\ndtype = "float16"\n')
    entry = read_config(config)
    assert entry["banks"] == [str(tmp_path / "cfg" / "banks" / "a.parquet"), "/abs/b.parquet"]
    assert merged(entry, {"limit": 5, "out": "x", "max_model_len": 4096}) == {**entry, "limit": 5,
                                                                              "max_model_len": 4096}
    config.write_text('task = "gsm8k"\nbatch = 3\n')
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['batch'\]"):
        read_config(config)


def test_model_settings_set_the_engine_variables_and_leave_the_eval_key(monkeypatch):
    from flows.cli_eval import spec_from_args as _eval_spec

    for variable in MODEL_SETTINGS.values():  # set, then removed: monkeypatch restores each after the test
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)
    plain = build_parser().parse_args(["eval", "--task", "gsm8k", "--shots", "0"])
    sized = build_parser().parse_args(["eval", "--task", "gsm8k", "--shots", "0", "--max-model-len", "2048",
                                       "--kv-cache-gib", "3", "--block-size", "16", "--dtype", "float16",
                                       "--tensor-parallel", "2"])
    assert _eval_spec(plain) == _eval_spec(sized)
    apply_model_settings(vars(sized))
    assert [os.environ[v] for v in MODEL_SETTINGS.values()] == ["2048", "3", "16", "float16", "2"]


def test_eval_config_errors_are_one_line(tmp_path):
    config = tmp_path / "eval.toml"
    config.write_text('banks = ["nope.parquet"]\n')
    proc = manyshot("eval", "--config", str(config), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "manyshot: error: manyshot eval: give --task, or a task key in the --config file"]
    config.write_text('task = "gsm8k"\nshot = [0]\n')
    proc = manyshot("eval", "--config", str(config), cwd=tmp_path)
    assert proc.returncode == 1 and "unknown key(s) ['shot']" in proc.stderr
    proc = manyshot("eval", "--task", "gsm8k", "--name", "latest", cwd=tmp_path)
    assert proc.returncode == 2 and "--name 'latest'" in proc.stderr


def test_latest_and_named_links_are_relative_and_replaced(tmp_path):
    root = tmp_path / "evals"
    first, second = root / "gsm8k-k1" / "runs" / "r1", root / "gsm8k-k2" / "runs" / "r2"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    link_run(root, first, "baseline")
    assert os.readlink(root / "latest") == os.path.join("gsm8k-k1", "runs", "r1")
    assert (root / "baseline").resolve() == first.resolve()
    link_run(root, second)
    assert (root / "latest").resolve() == second.resolve() and (root / "baseline").resolve() == first.resolve()
    with pytest.raises(ConfigError, match="is not a link manyshot made"):
        link_run(root, second, "gsm8k-k1")
    assert not [p for p in root.iterdir() if p.name.startswith(".")]


@pytest.mark.server
@pytest.mark.timeout(600)
@pytest.mark.usefixtures("prefect_harness")
def test_eval_with_config_name_and_quiet_in_a_process(tmp_path, data_dir):
    """A real ``manyshot eval --config`` against the scripted server: flags override the file, the run folder gets
    its name and ``latest``, and --quiet leaves stderr without log or progress lines."""
    from fake_openai import FakeOpenAI

    from flows.build.flow import build_bank
    from flows.core.specs import BuildSpec, Selection

    bank = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=12)),
                      data_dir=str(data_dir), out=str(tmp_path / "banks"))
    (tmp_path / "eval.toml").write_text(f'task = "gsm8k"\nbanks = ["banks/{Path(bank).name}"]\nshots = [0, 2]\n'
                                        'limit = 50\nmax_tokens = 64\nmodel = "fake-model"\nmax_model_len = 2048\n')
    server = FakeOpenAI(model="fake-model")
    try:
        proc = manyshot("eval", "--config", "eval.toml", "--limit", "3", "--endpoint", server.url,
                        "--out", "evals", "--name", "first-try", "--quiet", cwd=tmp_path,
                        env={"MANYSHOT_DATA_DIR": str(data_dir)}, timeout=500)
    finally:
        server.close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / proc.stdout.strip().splitlines()[-1]
    assert (tmp_path / "evals" / "latest").resolve() == (tmp_path / "evals" / "first-try").resolve() == \
        folder.resolve()
    results = pd.read_parquet(folder / "results.parquet")
    assert results.groupby("k").size().to_dict() == {0: 3, 2: 3}  # --limit 3 overrode the file's 50
    assert "INFO" not in proc.stderr and "progress eval" not in proc.stderr, proc.stderr[-3000:]


@pytest.mark.server
@pytest.mark.timeout(600)
def test_a_help_example_works_when_pasted_into_a_shell(tmp_path, data_dir):
    """`manyshot bank show`'s example, pasted into bash (it builds a bank, then shows it as JSON)."""
    script = f'manyshot() {{ {shlex.quote(sys.executable)} -m flows.cli "$@"; }}\n{EXAMPLES["bank show"][0]}\n'
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_HOME": str(tmp_path / "prefect"),
           "MANYSHOT_DATA_DIR": str(data_dir)}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["shots"] == 8 and doc["sources"] == {"ground-truth": 8}
