"""The test items of an evaluation, kept in its run folder as ``items.parquet`` (item id, question, gold answer,
subject), so that the folder carries what its report shows and can be moved or opened on a machine without the
datasets. ``manyshot report`` reads it first and falls back to the data dir for folders written before it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from flows.core.problem import DataError, Problem

ITEMS_FILE = "items.parquet"
ITEMS_SCHEMA = pa.schema([pa.field("item_id", pa.string(), nullable=False),
                          pa.field("question", pa.string(), nullable=False),
                          pa.field("gold", pa.string(), nullable=False),
                          pa.field("subject", pa.string())])


def items_table(items: Sequence[Problem]) -> pa.Table:
    return pa.Table.from_pylist([{"item_id": p.id, "question": p.question, "gold": p.answer, "subject": p.subject}
                                 for p in items], schema=ITEMS_SCHEMA)


def read_items(folder: Path, task: str) -> list[Problem] | None:
    """The items stored in ``folder`` as test problems of ``task`` (without solutions), or None when the folder
    has no ``items.parquet``."""
    path = Path(folder) / ITEMS_FILE
    if not path.exists():
        return None
    table = pq.read_table(path)
    missing = set(ITEMS_SCHEMA.names) - set(table.column_names)
    if missing:
        raise DataError(f"{path} lacks the columns {', '.join(sorted(missing))}")
    return [Problem(id=r["item_id"], task=task, split="test", question=r["question"], solution=None,
                    answer=r["gold"], subject=r["subject"]) for r in table.to_pylist()]
