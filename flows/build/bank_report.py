"""Bank reports: counts a user wants after a build, as a dict, a text table and Prefect artifacts."""
from __future__ import annotations

import statistics
from collections import Counter
from typing import Any, Sequence

import pyarrow as pa

import verifiers
from flows.core.problem import Problem
from flows.build.rounds import ChunkStats


def _yield_by(problems: Sequence[Problem], solved: set[str], attr: str) -> dict[str, str] | str:
    if all(getattr(p, attr) is None for p in problems):
        return "n/a"
    tried: Counter = Counter(str(getattr(p, attr)) for p in problems)
    ok: Counter = Counter(str(getattr(p, attr)) for p in problems if p.id in solved)
    return {k: f"{ok[k]}/{n} ({ok[k] / n:.0%})" for k, n in sorted(tried.items())}


def step_format(task: str) -> verifiers.Format:
    """The answer format whose step rules apply to a bank's rationales: its task's, or (a task file this process
    cannot resolve) none, so nothing is recomputed for it."""
    from flows.core.tasks import TASKS

    try:
        return TASKS[task].fmt
    except KeyError:
        return verifiers.Format("exact")


def step_summary(table: pa.Table, examples: int = 3, *, recompute: bool = False) -> dict[str, Any]:
    """Shots whose rationale has a wrong arithmetic step (``steps_wrong > 0``), and where the first few are.

    Uses the recorded ``steps_*`` columns; with ``recompute`` (or when no shot has them, e.g. a bank built
    before they existed) runs :func:`verifiers.check_steps` on every rationale instead. Empty for a bank
    without rationales."""
    rows = [r for r in table.select(["problem_id", "task", "rationale", "steps_checked", "steps_wrong"]).to_pylist()
            if r["rationale"]]
    recorded = not recompute and any(r["steps_wrong"] is not None for r in rows)
    if recorded:
        rows = [r for r in rows if r["steps_wrong"] is not None]
    else:
        for r in rows:
            report = verifiers.check_steps(r["rationale"], step_format(r["task"]))
            r["steps_checked"], r["steps_wrong"] = report.checked, report.wrong
    if not rows:
        return {}
    wrong = [r for r in rows if r["steps_wrong"] > 0]
    shown = []
    for r in wrong[:examples]:
        claims = verifiers.check_steps(r["rationale"], step_format(r["task"])).wrong_claims
        shown.append(f"{r['problem_id']}: " + "; ".join(c.describe() for c in claims[:2]))
    return {"steps checked": sum(r["steps_checked"] for r in rows),
            "shots with a wrong step": f"{len(wrong)} of {len(rows)} ({len(wrong) / len(rows):.1%})",
            "wrong-step examples": shown, "step counts": "recorded" if recorded else "recomputed"}


def build_report(source: Any, problems: Sequence[Problem], table: pa.Table, stats: Sequence[ChunkStats],
                 ) -> dict[str, Any]:
    """The report of a build by ``source`` (a :class:`flows.build.sources.ShotSource`): counts every bank has, then
    the source's own lines."""
    total = ChunkStats.total(stats)
    solved = set(table.column("problem_id").to_pylist())
    lengths = [len(r) for r in table.column("rationale").to_pylist() if r]
    report: dict[str, Any] = {"mode": source.mode, "problems tried": total.tried, "shots": table.num_rows,
                              "problems with a shot": len(solved)}
    report |= source.report(table, total, lambda attr: _yield_by(problems, solved, attr))
    if lengths:
        report["rationale chars (min/median/mean/max)"] = (
            f"{min(lengths)}/{statistics.median(lengths):.0f}/{statistics.mean(lengths):.0f}/{max(lengths)}")
    return report


def as_rows(report: dict[str, Any]) -> list[dict[str, str]]:
    return [{"metric": k, "value": str(v)} for k, v in report.items()]


def as_text(report: dict[str, Any]) -> str:
    width = max(len(k) for k in report)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in report.items())


def publish(report: dict[str, Any], *, title: str, key: str) -> None:
    """Print the report and attach it to the current Prefect run as a table artifact."""
    from prefect.artifacts import create_table_artifact

    print(f"{title}\n{as_text(report)}")
    create_table_artifact(table=as_rows(report), key=key, description=title)
