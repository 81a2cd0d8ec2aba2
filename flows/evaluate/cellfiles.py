"""What makes a cell file or a ``max`` resolution trustworthy for a run: the content keys of its test items and of
its task, recorded in each file and checked before a file is reused (changed test data is never served old cells).
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from flows.core.problem import Problem
from flows.core.specs import config_key
from flows.core.tasks import task as get_task
from flows.evaluate.shotcounts import Resolution

ITEMS_FIELD = b"manyshot.items"  # a cell file's Parquet metadata: the items digest it was computed on


def items_digest(items: list[Problem]) -> str:
    """The content key of the evaluated items: ids, question and gold answer text, subject and level, in order."""
    return config_key([(p.id, p.question, p.answer, p.subject, p.level) for p in items])


def task_digest(name: str) -> str:
    """The content key of what a task puts into eval prompts (its answer instruction and worked examples) and, for a
    task file, its whole definition (file and data content)."""
    spec = get_task(name)
    return config_key({"answer_format": spec.answer_format, "demos": spec.demos} | spec.key_config())


def stale_cell(path: Path, items: list[Problem], digest: str) -> str | None:
    """Why the cell file at ``path`` cannot be reused for ``items`` (None when it can): its recorded items digest
    differs, or (a cell written before digests were recorded) its item ids or gold answers differ."""
    recorded = (pq.read_schema(path).metadata or {}).get(ITEMS_FIELD)
    if recorded is not None:
        return None if recorded.decode() == digest else "it was computed on other test items (items digest differs)"
    rows = pq.read_table(path, columns=["item_id", "gold"]).to_pylist()
    if {(r["item_id"], r["gold"]) for r in rows} != {(p.id, p.answer) for p in items}:
        return "its item ids or gold answers differ from this run's test items"
    return None


def read_resolution(path: Path, digest: str) -> Resolution | None:
    """A stored ``max`` resolution, or None when it was resolved for other test items (or before it recorded them)."""
    saved = json.loads(path.read_text())
    if saved.get("items") != digest:
        return None
    return Resolution(saved["k"], saved["prompt_tokens"], saved["reason"])
