"""The rows of a task file's data: local .jsonl, .json, .csv, .tsv and .parquet files, or a Hugging Face hub split.

Each row comes with where it is (``file:line`` for line-based files, ``file: record N`` otherwise), so every
error about it names it. Rows are plain dicts of column -> value.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from flows.core.problem import DataError

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
Row = tuple[str, dict[str, Any]]  # (where, row)


ROOTS = ("task_file", "data_dir")  # what a task file's relative data paths resolve against ([data] / [prompt] root)
DATA_DIR_ENV = "MANYSHOT_DATA_DIR"  # --data-dir sets it too


def root_folder(root: str | None, task_path: Path, where: str) -> Path:
    """The folder a task file's relative paths resolve against: the task file's own folder (``task_file``, the
    default) or the data folder (``data_dir``: $MANYSHOT_DATA_DIR, which ``--data-dir`` sets)."""
    if root is None or root == "task_file":
        return task_path.parent
    if root != "data_dir":
        raise DataError(f"{where}: root must be one of {ROOTS}, not {root!r}")
    folder = os.environ.get(DATA_DIR_ENV)
    if not folder:
        raise DataError(f"{where}: root = \"data_dir\" but no data folder is set; pass --data-dir DIR or set "
                        f"{DATA_DIR_ENV} (the folder holding, e.g., bbh/tasks/)")
    return Path(folder)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_rows(path: Path, records: str | None = None, *, shown: str | None = None) -> list[Row]:
    """Every row of ``path`` (``records``: the key of a .json object holding the list); ``shown`` is how messages
    name the file (default: the path)."""
    name = shown or str(path)
    if not path.is_file():
        raise DataError(f"{name}: data file not found ({path})")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"{name}: unsupported data file type {suffix!r}; expected one of {SUFFIXES}")
    if records is not None and suffix != ".json":
        raise DataError(f"{name}: 'records' applies to .json files only")
    if suffix == ".jsonl":
        return _jsonl(path, name)
    if suffix == ".json":
        return _json(path, name, records)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise DataError(f"{name}: not a readable Parquet file ({exc})") from None
        return [(f"{name}: row {i}", r) for i, r in enumerate(rows)]
    return _csv(path, name, "\t" if suffix == ".tsv" else ",")


def _text(path: Path, name: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def _jsonl(path: Path, name: str) -> list[Row]:
    rows = []
    for n, line in enumerate(_text(path, name).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{name}:{n}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{name}:{n}: expected a JSON object, got {type(row).__name__}")
        rows.append((f"{name}:{n}", row))
    return rows


def _json(path: Path, name: str, records: str | None) -> list[Row]:
    try:
        data = json.loads(_text(path, name))
    except json.JSONDecodeError as exc:
        raise DataError(f"{name}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if isinstance(data, dict):
        if records is None:
            lists = [k for k, v in data.items() if isinstance(v, list)]
            raise DataError(f"{name}: a JSON object; set [data] records to the key of its list of rows "
                            f"(keys holding lists: {lists})")
        if records not in data or not isinstance(data[records], list):
            raise DataError(f"{name}: no list under records = {records!r}; keys: {sorted(data)}")
        data = data[records]
    elif records is not None:
        raise DataError(f"{name}: records = {records!r} given but the file holds a list, not an object")
    if not isinstance(data, list):
        raise DataError(f"{name}: expected a list of rows, got {type(data).__name__}")
    where = f"{name}: records[{{}}]" if records else f"{name}: [{{}}]"
    bad = next((i for i, r in enumerate(data) if not isinstance(r, dict)), None)
    if bad is not None:
        raise DataError(f"{where.format(bad)}: expected an object, got {type(data[bad]).__name__}")
    return [(where.format(i), r) for i, r in enumerate(data)]


def _csv(path: Path, name: str, delimiter: str) -> list[Row]:
    text = _text(path, name)
    reader = csv.DictReader(text.splitlines(keepends=True), delimiter=delimiter)
    rows = []
    try:
        for row in reader:
            where = f"{name}:{reader.line_num}"
            if None in row:
                raise DataError(f"{where}: {len(reader.fieldnames or []) + len(row[None])} fields, the header has "
                                f"{len(reader.fieldnames or [])}")
            if any(v is None for v in row.values()):
                raise DataError(f"{where}: fewer fields than the header's {len(reader.fieldnames or [])}")
            rows.append((where, row))
    except csv.Error as exc:
        raise DataError(f"{name}:{reader.line_num}: malformed CSV ({exc})") from None
    if reader.fieldnames is None:
        raise DataError(f"{name}: empty CSV file (no header)")
    return rows


def read_hub_rows(repo: str, config: str | None, split: str) -> list[Row]:
    """Every row of a hub dataset split (``datasets.load_dataset``), named ``repo[split] row N``."""
    import datasets

    try:
        ds = datasets.load_dataset(repo, config, split=split)
    except (ConnectionError, OSError, ValueError, datasets.exceptions.DatasetNotFoundError) as exc:
        raise DataError(f"could not load {repo} (config {config}, split {split}) from the Hugging Face hub: "
                        f"{exc}") from None
    return [(f"{repo}[{split}] row {i}", dict(r)) for i, r in enumerate(ds)]
