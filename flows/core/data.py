"""Datasets in, canonical :class:`Problem` records out.

Local JSONL (``--data-dir`` / ``MANYSHOT_DATA_DIR``, else ``./data`` when it holds the files) in the
published layouts, or the Hugging Face hub through ``datasets`` when there is no local copy. Bad rows
fail with the file and line.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Iterable, Sequence

from flows.core.problem import DataError, Problem
from flows.core.tasks import BUILTIN, TASKS, task as get_task
import flows.core.taskfile  # noqa: F401  (sets the loader by which TASKS finds task files a parent process resolved)
from generators.model_check import hub_reachable

SPLITS = ("train", "test")


LOCAL_DATA_DIR = Path("data")  # local dataset copies, relative to the working directory like runs/banks


def has_data_layout(folder: Path) -> bool:
    """Whether ``folder`` holds at least one ``{gsm8k,math}/{train,test}.jsonl`` file."""
    return any((folder / task / f"{split}.jsonl").is_file() for task in BUILTIN for split in SPLITS)


def default_data_dir() -> Path | None:
    """MANYSHOT_DATA_DIR, else ``./data`` (:data:`LOCAL_DATA_DIR`) when it holds the JSONL layout, else None."""
    env = os.environ.get("MANYSHOT_DATA_DIR")
    if env:
        return Path(env)
    return LOCAL_DATA_DIR.resolve() if has_data_layout(LOCAL_DATA_DIR) else None


def data_root(data_dir: Path | str | None = None) -> Path | None:
    """The folder ``load_problems`` reads: ``data_dir``, else MANYSHOT_DATA_DIR, else ``./data`` if it holds
    dataset files; None means the hub."""
    return Path(data_dir) if data_dir else default_data_dir()


def data_source(data_dir: Path | str | None = None) -> str:
    """Where ``load_problems`` reads from, for provenance: the data folder, else ``hub``."""
    root = data_root(data_dir)
    return str(root) if root else "hub"


def read_jsonl(path: Path, task: str, split: str) -> list[Problem]:
    parse = TASKS[task].parse
    problems = []
    try:
        with path.open("rb") as fh:
            for n, raw in enumerate(fh, start=1):
                where = f"{path}:{n}"
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(f"{where}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
                problem = parse(row, split, where)
                if problem is not None:
                    problems.append(problem)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist (expected {task}/{split}.jsonl under the data dir)") from None
    return problems


def _hub_offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def read_hub(task: str, split: str) -> list[Problem]:
    repo, config, hub_split = TASKS[task].hub[split]
    hint = ("pass --data-dir DIR (or set MANYSHOT_DATA_DIR) pointing at {gsm8k,math}/{train,test}.jsonl, "
            "or put those files under ./data")
    if _hub_offline() or not hub_reachable():
        raise DataError(f"no data dir given and the Hugging Face hub is offline or unreachable; {hint}")
    import datasets

    try:
        ds = datasets.load_dataset(repo, config, split=hub_split)
    except (ConnectionError, OSError, datasets.exceptions.DatasetNotFoundError) as exc:
        raise DataError(f"could not load {repo} from the Hugging Face hub ({exc}); {hint}") from exc
    parse = TASKS[task].parse
    parsed = (parse(dict(row), split, f"{repo}[{hub_split}] row {i}") for i, row in enumerate(ds))
    return [p for p in parsed if p is not None]


def load_problems(task: str, split: str, data_dir: Path | str | None = None) -> list[Problem]:
    """All problems of ``task``/``split``, from :func:`data_root` (``data_dir``, MANYSHOT_DATA_DIR, ``./data``)
    or the hub."""
    own = get_task(task).problems  # a task file's problems (its data lives beside the file, not in data_dir)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {SPLITS}")
    if own is not None:
        return list(own[split])
    root = data_root(data_dir)
    if root is None:
        return read_hub(task, split)
    return read_jsonl(root / task / f"{split}.jsonl", task, split)


def select(problems: Sequence[Problem], *, limit: int | None = None, seed: int = 0,
           subjects: Iterable[str] = (), levels: Iterable[int] = ()) -> list[Problem]:
    """Filter, then shuffle with ``random.Random(seed)`` and take the first ``limit``.

    A smaller limit is always a prefix of a larger one with the same seed and filters, which is
    what lets a bank grow by reusing its finished chunks.
    """
    subjects, levels = {s.lower() for s in subjects}, set(levels)
    chosen = [p for p in problems
              if (not subjects or (p.subject or "").lower() in subjects)
              and (not levels or p.level in levels)]
    chosen.sort(key=lambda p: p.id)
    random.Random(seed).shuffle(chosen)
    return chosen[:limit] if limit is not None else chosen
