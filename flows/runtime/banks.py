"""Shot banks on disk: one Parquet file per configuration, written once, atomically.

Layout under the banks root (``--out``, default ``runs/banks``)::

    <task>-<mode>-<key>.parquet        the finished bank (shots + bank-level metadata)
    .work/<work key>/chunk-<key>.parquet  checkpoints of an unfinished or growing build
"""
from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from flows.core.errors import UserError
from flows.core.schema import SCHEMA_VERSION_FIELD, SHOT_SCHEMA, SchemaError, read_metadata, schema_version, validate, \
    with_metadata

DEFAULT_ROOT = Path("runs") / "banks"


class BankError(UserError, ValueError):
    """A bank could not be read or written; the message names the path."""


def bank_path(root: Path, task: str, mode: str, key: str) -> Path:
    return Path(root) / f"{task}-{mode}-{key}.parquet"


def atomic_write(table: pa.Table, path: Path, *, exclusive: bool = False) -> bool:
    """Write ``table`` to ``path`` as Parquet, atomically (:func:`write_file_atomic`)."""
    return write_file_atomic(path, lambda tmp: pq.write_table(table, tmp), exclusive=exclusive)


def write_file_atomic(path: Path, write: Callable[[str], object], *, exclusive: bool = False) -> bool:
    """Write ``path`` through ``write(tmp)`` on a hidden temporary file in the same folder, then rename it into
    place, so no reader ever sees a partial file (a killed writer leaves only the hidden file; see
    :func:`remove_leftovers`).

    With ``exclusive`` the file is linked into place only if ``path`` does not exist yet (atomically, so of two
    concurrent writers exactly one succeeds); returns False when it already existed. Otherwise returns True.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; banks and cells are shared like any file
        write(tmp)
        if not exclusive:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_leftovers(path: Path) -> None:
    """Remove the temporary files a killed writer of ``path`` left behind. Only while holding ``path``'s lock:
    then nobody else is writing it."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp*"):
        stale.unlink(missing_ok=True)


def umask() -> int:
    """The process's umask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish_bank(path: Path, table: pa.Table, metadata: Mapping[str, Any]) -> bool:
    """Validate and write a finished bank unless a bank is already at ``path`` (a concurrent build of the same
    configuration finished first); returns whether this call wrote it. A bank is never overwritten."""
    return atomic_write(with_metadata(validate(table, SHOT_SCHEMA), metadata), path, exclusive=True)


def write_bank(path: Path, table: pa.Table, metadata: Mapping[str, Any]) -> Path:
    """Validate and write a finished bank. A bank is never overwritten."""
    if not publish_bank(path, table, metadata):
        raise BankError(f"{path} already exists; banks are written once")
    return path


def read_bank(path: Path | str) -> tuple[pa.Table, dict[str, Any]]:
    """The shots of a bank (validated against the schema) and its metadata."""
    path = Path(path)
    if not path.is_file():
        raise BankError(f"no bank at {path}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BankError(f"{path} is not a readable Parquet file: {exc}") from exc
    try:
        version = schema_version(table.schema)
    except SchemaError as exc:
        raise BankError(f"{path}: {exc}") from exc
    metadata = read_metadata(table.schema) | {SCHEMA_VERSION_FIELD: version}
    try:
        return validate(table, SHOT_SCHEMA), metadata
    except ValueError as exc:
        raise BankError(f"{path} is not a manyshot bank: {exc}") from exc


def list_banks(root: Path | str = DEFAULT_ROOT) -> list[dict[str, Any]]:
    """One summary row per bank under ``root`` (newest first); raises :class:`BankError` naming any unreadable one."""
    rows, unreadable = scan_banks(root)
    if unreadable:
        raise BankError("; ".join(unreadable.values()))
    return rows


def scan_banks(root: Path | str = DEFAULT_ROOT) -> tuple[list[dict[str, Any]], dict[Path, str]]:
    """The summary rows of the readable banks under ``root`` (newest first), and each unreadable ``.parquet``
    file there with the reason. Raises :class:`BankError` when ``root`` is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise BankError(f"no banks folder at {root}" if not root.exists() else f"{root} is not a folder")
    rows, unreadable = [], {}
    for path in sorted(root.glob("*.parquet")):
        try:
            schema, num_rows = pq.read_schema(path), pq.read_metadata(path).num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            unreadable[path] = f"{path} is not a readable Parquet file: {exc}"
            continue
        meta = read_metadata(schema)
        config = meta.get("config", {})
        rows.append({"path": str(path), "task": config.get("task"), "mode": config.get("mode"),
                     "model": config.get("model"), "shots": num_rows, "created_at": meta.get("created_at")})
    return sorted(rows, key=lambda r: str(r["created_at"]), reverse=True), unreadable


class ChunkStore:
    """Checkpointed chunks of one build. A chunk file is complete or absent (atomic rename)."""

    def __init__(self, root: Path, work_key: str):
        self.dir = Path(root) / ".work" / work_key

    def path(self, chunk_key: str) -> Path:
        return self.dir / f"chunk-{chunk_key}.parquet"

    def get(self, chunk_key: str) -> pa.Table | None:
        path = self.path(chunk_key)
        if not path.exists():
            return None
        table = pq.read_table(path)
        try:
            schema_version(table.schema)
        except SchemaError as exc:
            raise BankError(f"{path}: {exc}") from exc
        return validate(table.replace_schema_metadata(None), SHOT_SCHEMA)

    def stats(self, chunk_key: str) -> dict[str, Any]:
        return read_metadata(pq.read_schema(self.path(chunk_key))).get("stats", {})

    def put(self, chunk_key: str, table: pa.Table, stats: Mapping[str, Any]) -> None:
        atomic_write(with_metadata(validate(table, SHOT_SCHEMA), {"stats": stats}), self.path(chunk_key))
