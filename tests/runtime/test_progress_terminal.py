"""A real ``manyshot eval`` in a terminal (a pty from ``script``) against the scripted OpenAI-compatible server:
the live rich display is drawn and redrawn, with cells done of total, tokens/s, elapsed and ETA."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess

import pytest

from flows.build.flow import build_bank
from flows.core.specs import BuildSpec, Selection
from test_eval_processes import ROOT, Solver, eval_cmd

pytestmark = [pytest.mark.server, pytest.mark.timeout(600), pytest.mark.usefixtures("prefect_harness")]
COLOUR = re.compile(r"\x1b\[[0-9;]*m")
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")  # cursor moves and line erases: line breaks here


def in_terminal(cmd: list[str], env: dict) -> subprocess.CompletedProcess:
    """Run ``cmd`` with its stdin, stdout and stderr on a new pseudo-terminal; return what the terminal got."""
    return subprocess.run(["script", "-qefc", shlex.join(cmd), "/dev/null"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=400, stdin=subprocess.DEVNULL)


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1) from util-linux")
def test_eval_in_a_terminal_shows_the_live_display(tmp_path, data_dir):
    bank = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=12)),
                      data_dir=str(data_dir), out=str(tmp_path / "banks"))
    solver = Solver(data_dir, latency=0.3)
    env = {**os.environ, "MANYSHOT_DATA_DIR": str(data_dir), "PREFECT_HOME": str(tmp_path / "prefect"),
           "TERM": "xterm-256color", "COLUMNS": "200", "LINES": "50"}
    env.pop("PREFECT_API_URL", None)
    env.pop("MANYSHOT_PROGRESS", None)
    try:
        proc = in_terminal(eval_cmd(solver.server.url, bank, tmp_path / "evals"), env)
    finally:
        solver.server.close()
    raw = proc.stdout
    assert proc.returncode == 0, raw[-4000:]
    assert "\x1b[?25l" in raw and "\x1b[2K" in raw  # rich's live display: cursor hidden, lines redrawn in place
    text = CONTROL.sub("\n", COLOUR.sub("", raw))
    states = re.findall(r"eval gsm8k .*?cells (\d)/7 \| correct (\d+) \| ([\d.]+|-) tok/s \| elapsed (\S+) \| "
                        r"ETA (\S+)", text)
    assert states, text[-3000:]
    done = [int(s[0]) for s in states]
    assert done == sorted(done) and done[-1] == 7 and min(done) < 7  # redrawn as cells finished
    final = states[-1]
    assert final[4] == "0:00:00" and float(final[2]) > 0  # every cell done; tokens counted from the server's usage
    assert any(re.fullmatch(r"\d+:\d\d:\d\d", s[4]) for s in states if int(s[0]) < 7)  # a real ETA on the way
    assert "progress eval" not in text  # no plain lines on a terminal
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    results = [i for i, line in enumerate(lines) if line.startswith(str(tmp_path / "evals" / "gsm8k-"))]
    drawn = [i for i, line in enumerate(lines) if "cells 7/7" in line]
    assert results and results[-1] > drawn[-1]  # the results folder is printed after the display's last state
    logged = [line for line in lines if re.search(r"\| (INFO|WARNING|ERROR) ", line)]
    assert logged and not [line for line in logged if "tok/s" in line]  # log lines above the bar, never inside it
