"""Datasets in, canonical :class:`Problem` records out.

Local JSONL (``--data-dir`` / ``MANYSHOT_DATA_DIR``, else ``./data`` when it holds the files) in the
published layouts, or the Hugging Face hub through ``datasets`` when there is no local copy. Bad rows
fail with the file and line.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

logger = logging.getLogger(__name__)
TASKS = ("gsm8k", "math")
SPLITS = ("train", "test")
HUB = {
    ("gsm8k", "train"): ("openai/gsm8k", "main", "train"),
    ("gsm8k", "test"): ("openai/gsm8k", "main", "test"),
    ("math", "train"): ("hendrycks/competition_math", None, "train"),
    ("math", "test"): ("HuggingFaceH4/MATH-500", None, "test"),
}


LOCAL_DATA_DIR = Path("data")  # local dataset copies, relative to the working directory like runs/banks


class DataError(ValueError):
    """A dataset could not be read; the message names the file and line or the missing source."""


@dataclass(frozen=True)
class Problem:
    id: str
    task: str
    split: str
    question: str
    solution: str | None
    answer: str
    subject: str | None = None
    level: int | None = None


def content_id(task: str, question: str) -> str:
    """A stable id for a problem without one of its own."""
    return f"{task}/" + hashlib.sha256(question.strip().encode()).hexdigest()[:16]


def has_data_layout(folder: Path) -> bool:
    """Whether ``folder`` holds at least one ``{gsm8k,math}/{train,test}.jsonl`` file."""
    return any((folder / task / f"{split}.jsonl").is_file() for task in TASKS for split in SPLITS)


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


def gsm8k_problem(row: dict, split: str, where: str) -> Problem:
    question, answer = row.get("question"), row.get("answer")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: missing or empty 'question'")
    if not isinstance(answer, str) or "####" not in answer:
        raise DataError(f"{where}: 'answer' has no '#### <final answer>' line")
    solution, _, final = answer.rpartition("####")
    final = final.strip()
    if not final:
        raise DataError(f"{where}: empty final answer after '####'")
    return Problem(id=content_id("gsm8k", question), task="gsm8k", split=split, question=question.strip(),
                   solution=solution.strip(), answer=final)


def math_problem(row: dict, split: str, where: str) -> Problem | None:
    """A MATH row; None for a row whose answer is present but empty (ungradeable, skipped with a warning)."""
    problem, answer = row.get("problem"), row.get("answer")
    if not isinstance(problem, str) or not problem.strip():
        raise DataError(f"{where}: missing or empty 'problem'")
    if not isinstance(answer, str):
        raise DataError(f"{where}: missing 'answer'")
    if not answer.strip():
        logger.warning("%s: empty 'answer', row skipped", where)
        return None
    level = row.get("level")
    if isinstance(level, str):
        digits = level.removeprefix("Level ").strip()
        level = int(digits) if digits.isdigit() else None
    uid = row.get("unique_id")
    return Problem(id=f"math/{uid}" if uid else content_id("math", problem), task="math", split=split,
                   question=problem.strip(), solution=row.get("solution"), answer=answer.strip(),
                   subject=row.get("subject") or row.get("type"), level=level)


PARSERS = {"gsm8k": gsm8k_problem, "math": math_problem}


def read_jsonl(path: Path, task: str, split: str) -> list[Problem]:
    parse = PARSERS[task]
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


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """One quick connection attempt, so a machine without network fails fast instead of retrying."""
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def read_hub(task: str, split: str) -> list[Problem]:
    repo, config, hub_split = HUB[(task, split)]
    hint = ("pass --data-dir DIR (or set MANYSHOT_DATA_DIR) pointing at {gsm8k,math}/{train,test}.jsonl, "
            "or put those files under ./data")
    if _hub_offline() or not _hub_reachable():
        raise DataError(f"no data dir given and the Hugging Face hub is offline or unreachable; {hint}")
    import datasets

    try:
        ds = datasets.load_dataset(repo, config, split=hub_split)
    except (ConnectionError, OSError, datasets.exceptions.DatasetNotFoundError) as exc:
        raise DataError(f"could not load {repo} from the Hugging Face hub ({exc}); {hint}") from exc
    parse = PARSERS[task]
    parsed = (parse(dict(row), split, f"{repo}[{hub_split}] row {i}") for i, row in enumerate(ds))
    return [p for p in parsed if p is not None]


def load_problems(task: str, split: str, data_dir: Path | str | None = None) -> list[Problem]:
    """All problems of ``task``/``split``, from :func:`data_root` (``data_dir``, MANYSHOT_DATA_DIR, ``./data``)
    or the hub."""
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; expected one of {TASKS}")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {SPLITS}")
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


def normalize_text(text: str) -> str:
    """Lower-case, collapse whitespace and strip punctuation: for duplicate and leakage checks."""
    kept = "".join(c.lower() if c.isalnum() else " " for c in text)
    return " ".join(kept.split())
