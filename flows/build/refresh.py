"""Incremental, versioned bank refreshes (what a scheduled bank job runs).

A refresh job keeps its banks under ``<banks root>/<job>/``::

    <job>-v0001.parquet, <job>-v0002.parquet, ...   versions, each written once, atomically
    latest                                          text file naming the newest version (atomically replaced)
    .work/<key>/chunk-*.parquet                     checkpoints of an unfinished refresh (v2 on; v1 uses the
                                                    banks root's .work/, like build_bank)

(Version files carry the job name so that evaluations, which label banks by file stem, can tell the
versions of two jobs apart.)

A refresh selects the job's problems, skips those the latest version already has shots for, builds
shots for the rest with :func:`flows.build.flow.run_chunks` (chunked and checkpointed like ``build_bank``,
optionally sharded over workers), and publishes ``v(N+1) = vN's shots + the new shots``. Each version
samples with its own seed (:func:`version_seed`), so problems still unsolved get fresh samples. When no
problem is left, or none of the remaining ones was solved, no version is written. Older versions are
never touched. v1 is a plain build of the selection and uses the plain build's checkpoints, so a refresh
and a ``manyshot bank build`` of the same configuration under the same banks root share their chunks
(under the chunk locks of :mod:`flows.runtime.locks`, also while both run).
"""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
from prefect import flow, get_run_logger

from flows.runtime import banks
from flows.build.flow import chunks, empty_reason, load_selection, provenance, run_chunks, table_models
from flows.build.bank_report import build_report, publish
from flows.core.schema import SHOT_SCHEMA, validate
from flows.core.seeds import derive_seed
from flows.core.specs import BuildError, BuildSpec, config_key
from flows.build.sources import REFRESH_MODES, key_config, source_for
from generators import Generator, GeneratorConfig

POINTER = "latest"
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def version_name(job: str, n: int) -> str:
    return f"{job}-v{n:04d}.parquet"


def version_seed(seed: int, n: int) -> int:
    """The sampling seed of version ``n``: the job's seed for v1 (so v1 equals a plain build), then distinct."""
    if n <= 1:
        return seed
    return derive_seed("refresh", seed, n)


def versions(job_dir: Path | str, job: str | None = None) -> list[tuple[int, Path]]:
    """All published versions in a job folder, oldest first."""
    job_dir = Path(job_dir)
    job = job or job_dir.name
    pattern = re.compile(rf"^{re.escape(job)}-v(\d{{4,}})\.parquet$")
    found = [(int(m.group(1)), p) for p in job_dir.glob("*.parquet") if (m := pattern.match(p.name))]
    return sorted(found)


def latest_version(job_dir: Path | str) -> Path | None:
    """The version the ``latest`` pointer names (what readers should use), or None before the first one."""
    job_dir = Path(job_dir)
    pointer = job_dir / POINTER
    if pointer.is_file():
        path = job_dir / pointer.read_text().strip()
        if path.is_file():
            return path
    found = versions(job_dir)
    return found[-1][1] if found else None


def _point(job_dir: Path, path: Path) -> None:
    banks.write_file_atomic(job_dir / POINTER, lambda tmp: Path(tmp).write_text(path.name + "\n"))


def _check_previous(job: str, spec: BuildSpec, path: Path, table: pa.Table) -> None:
    tasks = set(table.column("task").to_pylist())
    sources = set(table.column("source").to_pylist())
    if tasks - {spec.selection.task} or sources - {spec.mode}:
        raise BuildError(f"job {job}: {path.name} holds {sorted(tasks)} {sorted(sources)} shots but the job now asks "
                         f"for {spec.selection.task} {spec.mode}; give the changed job a new name")


@flow(name="refresh-bank", validate_parameters=False, log_prints=True)
def refresh_bank(spec: BuildSpec, job: str, data_dir: str | None = None, out: str | None = None,
                 generator: GeneratorConfig | Generator | None = None, submit: bool = False) -> dict[str, Any]:
    """Publish the next version of job ``job``'s bank under ``<out>/<job>/`` if there is anything new.

    ``submit=True`` runs the chunks concurrently on the flow's task runner (give the flow a Dask runner with
    ``refresh_bank.with_options(task_runner=flows.build.flow.dask_runner(n))``). Returns a JSON-able summary whose
    ``status`` is ``published``, ``up-to-date`` (no problem left to try) or ``nothing-solved``.
    """
    logger = get_run_logger()
    if not JOB_NAME.match(job):
        raise BuildError(f"job name {job!r}: use letters, digits, '.', '_' and '-' (it names files)")
    if spec.mode not in REFRESH_MODES:
        raise BuildError(f"job {job}: mode {spec.mode!r} cannot be refreshed incrementally; "
                         f"expected one of {REFRESH_MODES}")
    if spec.iterate_from:
        raise BuildError(f"job {job}: iterate_from is not supported by refresh jobs")
    job_dir = (Path(out) if out else banks.DEFAULT_ROOT) / job
    problems = load_selection(spec, data_dir)
    found = versions(job_dir, job)
    n_prev, prev = found[-1] if found else (0, None)
    summary: dict[str, Any] = {"job": job, "selected": len(problems), "previous": prev and str(prev)}
    if prev is not None:
        prev_table, _ = banks.read_bank(prev)
        _check_previous(job, spec, prev, prev_table)
        pointer = job_dir / POINTER
        if not pointer.is_file() or pointer.read_text().strip() != prev.name:
            _point(job_dir, prev)  # a crash between writing a version and re-pointing: the version is complete
    else:
        prev_table = SHOT_SCHEMA.empty_table()
    done = set(prev_table.column("problem_id").to_pylist())
    todo = [p for p in problems if p.id not in done]
    summary |= {"already_solved": len(problems) - len(todo), "tried": len(todo), "latest": prev and str(prev)}
    if not todo:
        message = f"job {job}: all {len(problems)} selected problems already have shots in {prev.name}; no new version"
        print(message)
        return summary | {"status": "up-to-date", "message": message, "newly_solved": 0, "shots_added": 0}

    n = n_prev + 1
    seed = version_seed(spec.selection.seed, n)
    run_spec = replace(spec, selection=replace(spec.selection, seed=seed))  # the selection is already made
    work_key = config_key({"refresh": job, "version": n, "previous": prev and prev.name, "seed": seed,
                                 "config": key_config(spec, with_limit=False),
                                 "todo": config_key([p.id for p in todo])})
    if prev is None:  # v1 is a plain build of the selection: share its checkpoints with `manyshot bank build`
        store = banks.ChunkStore(job_dir.parent, config_key(key_config(spec, with_limit=False)))
    else:
        store = banks.ChunkStore(job_dir, work_key)
    prov = provenance(spec, data_dir)
    logger.info("job %s: %d of %d selected problems to try for v%04d (seed %d)", job, len(todo), len(problems), n, seed)
    state, todo = source_for(spec.mode).prepare(spec, todo, data_dir)
    new, stats = run_chunks(run_spec, generator, chunks(todo, spec.chunk_size), prov, state, store, submit=submit)
    solved = len(set(new.column("problem_id").to_pylist()))
    summary |= {"newly_solved": solved, "shots_added": new.num_rows, "still_unsolved": len(todo) - solved}
    if new.num_rows == 0:
        message = (f"job {job}: none of the {len(todo)} problems tried was solved ({empty_reason(spec, stats)}); "
                   f"no new version, {prev.name if prev else 'no version'} stays latest")
        print(message)
        return summary | {"status": "nothing-solved", "message": message}

    path = job_dir / version_name(job, n)
    combined = validate(pa.concat_tables([prev_table.replace_schema_metadata(None), new]), SHOT_SCHEMA)
    report = build_report(source_for(spec.mode), todo, new, stats)
    refresh = {k: summary[k] for k in ("selected", "already_solved", "tried", "newly_solved", "still_unsolved",
                                       "shots_added")} | {"shots_total": combined.num_rows}
    meta = {"config": key_config(spec) | {"task": spec.selection.task, "model": table_models(combined)},
            "job": job, "version": n, "previous": prev.name if prev else None, "seed": seed,
            "created_at": datetime.now(timezone.utc).isoformat(), "run_id": prov.run_id, "report": report,
            "refresh": refresh}
    written = banks.publish_bank(path, combined, meta)
    _point(job_dir, path)
    if written:
        message = (f"job {job}: published {path.name} ({solved} of {len(todo)} tried problems newly solved, "
                   f"{new.num_rows} shots added, {combined.num_rows} in total)")
        publish(report | {"refresh": refresh}, title=f"bank {path.name}", key="bank-report")
    else:
        message = f"job {job}: {path.name} was published by a concurrent refresh of the same job"
    print(message)
    return summary | {"status": "published", "message": message, "version": n, "latest": str(path),
                      "shots_total": combined.num_rows}
