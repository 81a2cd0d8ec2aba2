"""A command's inputs, checked before any flow runs and before Prefect's temporary server starts.

Each check raises the error the CLI reports as one line (:mod:`flows.errors`): a missing or unreadable bank, a
malformed dataset row or an empty selection, an unwritable ``--out``, a model that cannot be loaded. So a typo
costs a second, not a server start, a flow run and a traceback. The flows check the same things again where
they run; these checks only make the answer come first.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from flows.runtime import banks
from flows.build.flow import selected_problems
from flows.build.sources import source_for
from flows.core.data import load_problems
from flows.errors import OutputError, UsageError
from flows.core.specs import BuildSpec, EvalSpec, parse_shots
from flows.evaluate.flow import DEFAULT_ROOT as EVALS_ROOT
from generators import check_loadable


def check_writable(path: Path | str, option: str, *, file: bool = False) -> None:
    """Raise :class:`OutputError` unless the folder ``path`` (with ``file``: the file ``path``) can be created or
    written: the nearest part of it that exists must be a folder this process may write in."""
    target = Path(path).expanduser().absolute()
    if file and target.is_dir():
        raise OutputError(f"cannot write {option} {path}: it is a folder; give a file name")
    folder = target.parent if file else target
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise OutputError(f"cannot write {option} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {option} {path}: no permission to write in {existing}")


def check_build(spec: BuildSpec, *, data_dir: str | None, out: str | None, endpoints: Sequence[str]) -> None:
    """``manyshot bank build``: the bank to iterate from, the selection, the banks folder, the model."""
    if spec.iterate_from:
        banks.read_bank(spec.iterate_from)
    selected_problems(spec, data_dir)
    check_writable(out or banks.DEFAULT_ROOT, "--out")
    if source_for(spec.mode).needs_model:
        check_loadable(spec.model, endpoints)


def check_eval(spec: EvalSpec, *, data_dir: str | None, out: str | None, endpoints: Sequence[str]) -> None:
    """``manyshot eval``: K > 0 has banks, each bank reads, the test split reads, the results root, the model."""
    if any(k != 0 for k in parse_shots(spec.shots)) and not spec.banks:
        raise UsageError("--shots with a K above 0 needs at least one --bank (or --shots 0 alone)")
    for path in spec.banks:
        banks.read_bank(path)
    load_problems(spec.task, "test", data_dir)
    check_writable(out or EVALS_ROOT, "--out")
    check_loadable(spec.model, endpoints)


def check_run(model: str, *, task: str, data_dir: str | None, out: str) -> None:
    """``manyshot run``: both splits of its task, the output root, the model."""
    for split in ("train", "test"):
        load_problems(task, split, data_dir)
    check_writable(out, "--out")
    check_loadable(model)


def check_ablation(config: str, *, out: str | None, endpoints: Sequence[str]) -> None:
    """``manyshot ablate``: the spec reads, the output root, the spec's model."""
    from flows.ablate import load_spec

    spec = load_spec(config)
    check_writable(out or spec.get("out", "runs"), "--out")
    check_loadable(spec.get("model", "embedded"), endpoints or tuple(spec.get("endpoints", ())))
