"""What changed between two versions of a bank: problems added, removed and changed, matched by problem id.

A problem is *changed* when the set of (rationale, answer) pairs of its shots differs between the two
versions (a refresh that re-solves a problem, a rebuild with another model or template). Shots are also
counted by ``shot_id`` (a hash of problem id, source and rationale).
"""
from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from flows.runtime.banks import BankError, read_bank

DIFF_LINES = 40


class DiffError(BankError):
    """Two banks cannot be compared; the message names both."""


def _by_problem(table: pa.Table) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in table.select(["problem_id", "shot_id", "question", "rationale", "answer"]).to_pylist():
        out.setdefault(row["problem_id"], []).append(row)
    return out


def _pairs(shots: list[dict]) -> list[tuple[str, str]]:
    return sorted({(s["rationale"] or "", s["answer"] or "") for s in shots})


def _summary(path: Path, table: pa.Table) -> dict[str, Any]:
    return {"path": str(path), "tasks": sorted(set(table.column("task").to_pylist())),
            "sources": sorted(set(table.column("source").to_pylist())), "shots": table.num_rows,
            "problems": len(set(table.column("problem_id").to_pylist()))}


def rationale_diff(before: str, after: str, problem_id: str, lines: int = DIFF_LINES) -> str:
    """A unified diff of two rationales, cut after ``lines`` lines."""
    out = list(difflib.unified_diff(before.splitlines(), after.splitlines(), f"A {problem_id}", f"B {problem_id}",
                                    lineterm=""))
    if len(out) > lines:
        out = out[:lines] + [f"... ({len(out) - lines} more diff lines)"]
    return "\n".join(out)


def _entry(problem_id: str, shots: list[dict]) -> dict[str, Any]:
    return {"problem_id": problem_id, "question": shots[0]["question"],
            "answers": sorted({s["answer"] for s in shots if s["answer"] is not None})}


def diff_tables(a: pa.Table, b: pa.Table, a_name: str = "A", b_name: str = "B") -> dict[str, Any]:
    """The differences between banks ``a`` (older) and ``b`` (newer) as a JSON-able dict."""
    tasks_a, tasks_b = sorted(set(a.column("task").to_pylist())), sorted(set(b.column("task").to_pylist()))
    if tasks_a != tasks_b:
        raise DiffError(f"{a_name} holds {'/'.join(tasks_a) or 'no'} shots but {b_name} holds "
                        f"{'/'.join(tasks_b) or 'no'} shots; bank diff compares two versions of one task's bank")
    old, new = _by_problem(a), _by_problem(b)
    added = [_entry(p, shots) for p, shots in new.items() if p not in old]
    removed = [_entry(p, shots) for p, shots in old.items() if p not in new]
    changed = []
    for p, shots in new.items():
        if p not in old or _pairs(old[p]) == _pairs(shots):
            continue
        before = [r for r in _pairs(old[p]) if r not in _pairs(shots)]
        after = [r for r in _pairs(shots) if r not in _pairs(old[p])]
        changed.append({"problem_id": p, "question": shots[0]["question"],
                        "answers_before": sorted({ans for _, ans in _pairs(old[p]) if ans}),
                        "answers_after": sorted({ans for _, ans in _pairs(shots) if ans}),
                        "shots_before": len(old[p]), "shots_after": len(shots),
                        "rationale_diff": rationale_diff(before[0][0], after[0][0], p) if before and after else ""})
    ids_a, ids_b = set(a.column("shot_id").to_pylist()), set(b.column("shot_id").to_pylist())
    counts = {"problems_added": len(added), "problems_removed": len(removed), "problems_changed": len(changed),
              "problems_unchanged": sum(1 for p in new if p in old) - len(changed),
              "shots_added": len(ids_b - ids_a), "shots_removed": len(ids_a - ids_b)}
    return {"counts": counts, "added": added, "removed": removed, "changed": changed}


def diff_banks(a: Path | str, b: Path | str) -> dict[str, Any]:
    """Read two banks and diff them; the result names both files."""
    (table_a, _), (table_b, _) = read_bank(a), read_bank(b)
    result = diff_tables(table_a, table_b, str(a), str(b))
    return {"a": _summary(Path(a), table_a), "b": _summary(Path(b), table_b)} | result


def _short(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 3] + "..."


def _listing(title: str, mark: str, entries: list[dict], limit: int) -> list[str]:
    if not entries:
        return []
    lines = [f"\n{title} ({len(entries)}):"]
    for e in entries[:limit]:
        if "answers" in e:
            answers = ",".join(e["answers"]) or "-"
        else:
            answers = f"{','.join(e['answers_before']) or '-'} -> {','.join(e['answers_after']) or '-'}"
        lines.append(f"  {mark} {e['problem_id']}  answer {answers}  {_short(e['question'])}")
    if len(entries) > limit:
        lines.append(f"  ... and {len(entries) - limit} more (--json lists all)")
    return lines


def as_text(diff: dict[str, Any], *, limit: int = 20, diffs: int = 3) -> str:
    """A readable report: both banks, the counts, then the listings and a few rationale diffs."""
    c = diff["counts"]
    lines = [f"{side}: {s['path']}  ({'/'.join(s['tasks'])} {'/'.join(s['sources'])}, {s['shots']} shots, "
             f"{s['problems']} problems)" for side, s in (("A", diff["a"]), ("B", diff["b"]))]
    lines += [f"problems: {c['problems_added']} added, {c['problems_removed']} removed, "
              f"{c['problems_changed']} changed, {c['problems_unchanged']} unchanged",
              f"shots:    {c['shots_added']} added, {c['shots_removed']} removed (by shot id)"]
    lines += _listing("added", "+", diff["added"], limit)
    lines += _listing("removed", "-", diff["removed"], limit)
    lines += _listing("changed", "~", diff["changed"], limit)
    shown = [e for e in diff["changed"] if e["rationale_diff"]][:diffs]
    if shown:
        lines.append(f"\nrationale diffs (first {len(shown)} of {len(diff['changed'])} changed):")
        for e in shown:
            lines += ["", e["rationale_diff"]]
    return "\n".join(lines)


def diff_command(a: str, b: str, *, as_json: bool = False, limit: int = 20, diffs: int = 3) -> str:
    """``manyshot bank diff``: the text report, or the full diff as JSON."""
    diff = diff_banks(a, b)
    return json.dumps(diff, indent=1) if as_json else as_text(diff, limit=limit, diffs=diffs)
