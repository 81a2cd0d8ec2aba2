"""The shot record, the result record and their Parquet schemas. Every other module uses these.

pyarrow does not enforce ``nullable=False`` on write, so :func:`validate` checks required columns,
types and nulls before anything is written, and names the column and row that are wrong.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import pyarrow as pa

from flows.core.errors import UserError

SOURCES = ("ground-truth", "reinforced", "unsupervised", "generated", "human-cot")
SCHEMA_VERSION = "2"  # 2: steps_checked, steps_wrong (shots) and k_label (results); version-1 files read with nulls there
SCHEMA_VERSION_FIELD = "manyshot_schema_version"  # the metadata key with_metadata writes it under


def _field(name: str, type_: pa.DataType, required: bool) -> pa.Field:
    return pa.field(name, type_, nullable=not required)


SHOT_SCHEMA = pa.schema([
    _field("shot_id", pa.string(), True),          # stable: hash of problem id, source and rationale
    _field("problem_id", pa.string(), True),
    _field("task", pa.string(), True),
    _field("question", pa.string(), True),
    _field("rationale", pa.string(), False),       # null for unsupervised and generated shots
    _field("answer", pa.string(), False),          # final answer; null where none is known
    _field("gold_answer", pa.string(), False),     # the dataset's answer the shot was verified against
    _field("source", pa.string(), True),
    _field("subject", pa.string(), False),
    _field("level", pa.int64(), False),
    _field("model", pa.string(), False),           # null for ground-truth and dataset-only shots
    _field("sampling", pa.string(), False),        # JSON of the sampling parameters
    _field("seed", pa.int64(), False),
    _field("round", pa.int64(), False),
    _field("template_id", pa.string(), False),
    _field("template_hash", pa.string(), False),
    _field("verifier_version", pa.string(), False),
    _field("verifier_method", pa.string(), False),
    _field("seed_problem_ids", pa.list_(pa.string()), False),  # generated queries: their seed problems
    _field("completion_tokens", pa.int64(), False),
    _field("dataset", pa.string(), True),
    _field("split", pa.string(), True),
    _field("created_at", pa.timestamp("us", tz="UTC"), True),
    _field("run_id", pa.string(), True),
    _field("steps_checked", pa.int64(), False),    # arithmetic claims of the rationale verifiers.check_steps checked
    _field("steps_wrong", pa.int64(), False),      # how many of them are false (null: not checked, older banks)
])
# Nullable shot columns added after the first banks were written: a table without them reads with nulls.
ADDED_SHOT_COLUMNS = ("steps_checked", "steps_wrong")


@dataclass(frozen=True)
class Shot:
    """A shot as prompts use it, from a bank row (:data:`SHOT_SCHEMA`): bare problems have no rationale."""

    problem_id: str
    question: str
    rationale: str | None
    shot_id: str | None = None  # the bank row's id (None for shots not read from a bank)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Shot":
        return cls(row["problem_id"], row["question"], row["rationale"], row.get("shot_id"))


RESULT_SCHEMA = pa.schema([
    _field("run_id", pa.string(), True),
    _field("task", pa.string(), True),
    _field("bank", pa.string(), True),             # bank label ("none" for zero-shot)
    _field("source", pa.string(), True),
    _field("transfer", pa.bool_(), True),          # bank task differs from eval task
    _field("k", pa.int64(), True),
    _field("k_label", pa.string(), False),        # the sweep's name for K: "16", or "max" (set when results combine)
    _field("seed", pa.int64(), True),
    _field("select", pa.string(), False),         # shot selection ("random", "similar/minilm", ...); null: random
    _field("order", pa.int64(), False),           # permutation of the same K shots (--orders); null or 0: the strategy's own
    _field("item_id", pa.string(), True),
    _field("sample", pa.int64(), True),
    _field("prompt_hash", pa.string(), True),
    _field("shot_ids", pa.list_(pa.string()), False),  # the prompt's shots, in prompt order; null in older cells
    _field("prompt_tokens", pa.int64(), True),
    _field("response", pa.string(), True),
    _field("gold", pa.string(), True),
    _field("extracted_strict", pa.string(), False),
    _field("extracted_flexible", pa.string(), False),
    _field("correct_strict", pa.bool_(), True),
    _field("correct_flexible", pa.bool_(), True),
    _field("method", pa.string(), True),
    _field("error", pa.string(), False),
    _field("model", pa.string(), True),
    _field("created_at", pa.timestamp("us", tz="UTC"), True),
])
# Nullable result columns added after the first cells were written (null reads as random selection, order 0).
ADDED_RESULT_COLUMNS = ("select", "order", "shot_ids")


class SchemaError(UserError, ValueError):
    """A record or table does not match its schema."""


def validate(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Return ``table`` cast to ``schema``; raise :class:`SchemaError` naming the first problem.

    A table without the columns added to its schema later (:data:`ADDED_SHOT_COLUMNS`, :data:`ADDED_RESULT_COLUMNS`:
    an older bank, checkpoint or cell) gets them as nulls."""
    added = {id(SHOT_SCHEMA): ADDED_SHOT_COLUMNS, id(RESULT_SCHEMA): ADDED_RESULT_COLUMNS}.get(id(schema), ())
    for name in added:
        if name not in table.column_names:
            table = table.append_column(schema.field(name), pa.nulls(table.num_rows, schema.field(name).type))
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise SchemaError(f"missing required columns: {', '.join(missing)}")
    extra = [n for n in table.column_names if n not in schema.names]
    if extra:
        raise SchemaError(f"unknown columns: {', '.join(extra)}")
    table = table.select(schema.names)
    for f in schema:
        col = table.column(f.name)
        if not f.nullable and col.null_count:
            row = next(i for i, v in enumerate(col.to_pylist()) if v is None)
            raise SchemaError(f"column {f.name!r} is required but row {row} is null")
    try:
        table = table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise SchemaError(f"column types do not match the schema: {exc}") from exc
    if "source" in schema.names and schema is SHOT_SCHEMA:
        bad = sorted(set(table.column("source").to_pylist()) - set(SOURCES))
        if bad:
            raise SchemaError(f"unknown shot source {bad[0]!r}; expected one of {SOURCES}")
    return table


def to_table(rows: Iterable[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Build a validated table from row dicts (missing nullable keys become null)."""
    rows = list(rows)
    columns = {f.name: [r.get(f.name) for r in rows] for f in schema}
    loose = pa.schema([f.with_nullable(True) for f in schema])
    try:
        table = pa.Table.from_pydict(columns, schema=loose)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaError(f"rows do not match the schema: {exc}") from exc
    return validate(table, schema)


def with_metadata(table: pa.Table, metadata: Mapping[str, Any]) -> pa.Table:
    """Attach JSON-encoded key/value metadata (bank configuration, provenance) to a table."""
    encoded = {k.encode(): json.dumps(v, sort_keys=True, default=str).encode() for k, v in metadata.items()}
    encoded[SCHEMA_VERSION_FIELD.encode()] = SCHEMA_VERSION.encode()
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **encoded})


def schema_version(schema: pa.Schema) -> int:
    """The schema version a file's metadata records; 1 for files written before versions were recorded.

    Raises :class:`SchemaError` for a version newer than :data:`SCHEMA_VERSION` (a file from a newer manyshot,
    which this code must not misread) or one that is not a version number.
    """
    raw = (schema.metadata or {}).get(SCHEMA_VERSION_FIELD.encode())
    if raw is None:
        return 1
    text = raw.decode("utf-8", errors="replace").strip()
    if not text.isdigit():
        raise SchemaError(f"schema version {text!r} is not a version number")
    if int(text) > int(SCHEMA_VERSION):
        raise SchemaError(f"written with schema version {text}, newer than version {SCHEMA_VERSION}, the newest "
                          f"this manyshot reads; read it with a newer manyshot")
    return int(text)


def read_metadata(schema: pa.Schema) -> dict[str, Any]:
    """Decode metadata written by :func:`with_metadata` (other keys, e.g. pandas', are skipped)."""
    out: dict[str, Any] = {}
    for k, v in (schema.metadata or {}).items():
        key = k.decode()
        if key == "pandas":
            continue
        try:
            out[key] = json.loads(v)
        except json.JSONDecodeError:
            out[key] = v.decode()
    return out
