"""``manyshot bank list --json`` and ``manyshot bank show --json``: one JSON document on stdout, for scripts."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def bank_list(folder: Path | str, rows: list[dict[str, Any]], unreadable: dict[Path, str]) -> str:
    """``{"folder", "banks": [summary rows], "unreadable": {path: reason}}`` of a scanned folder
    (:func:`flows.runtime.banks.scan_banks`)."""
    return json.dumps({"folder": str(folder), "banks": rows,
                       "unreadable": {str(path): why for path, why in unreadable.items()}}, indent=1, default=str)


def bank_show(path: Path | str, sample: int = 1) -> str:
    """Counts, schema version, sources, key configuration, provenance, step check and the first ``sample``
    shots of a bank."""
    from flows.build.bank_report import step_summary
    from flows.core.schema import SCHEMA_VERSION_FIELD
    from flows.runtime.banks import read_bank

    table, meta = read_bank(path)
    df = table.to_pandas()
    first = df.iloc[0] if len(df) else None
    doc: dict[str, Any] = {
        "path": str(path), "shots": len(df), "problems": int(df["problem_id"].nunique()),
        "schema_version": meta[SCHEMA_VERSION_FIELD],
        "sources": {str(k): int(v) for k, v in df["source"].value_counts().items()},
        **{key: meta.get(key) for key in ("config", "run_id", "created_at", "report", "task_definition")},
        "provenance": None if first is None else {key: first[key] for key in
                                                  ("model", "template_id", "verifier_version", "split", "dataset")},
        "step_check": step_summary(table),
        "sample": [{key: row[key] for key in ("shot_id", "problem_id", "question", "rationale", "answer")}
                   for _, row in df.head(sample).iterrows()],
    }
    return json.dumps(doc, indent=1, default=str)
