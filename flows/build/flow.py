"""The bank-building Prefect flow: a thin shell of tasks over the shot sources (:mod:`flows.build.sources`).

Work is split into chunks of problems; each finished chunk is checkpointed as a Parquet part, so a
killed build resumes where it stopped, and a larger ``--limit`` reuses the chunks it shares.

The chunks run one after the other in the flow process, or (``submit=True``) concurrently on the flow's task
runner: :func:`sharded` gives the flow a Dask runner, and each worker then resolves its own generator from a
:class:`generators.GeneratorConfig` (the loader caches engines per process; a picklable generator instance is
shipped as is). Chunk seeds depend only on the chunk index, so a sharded bank has the same rows as a serial
one (only ``created_at`` and ``run_id`` differ), and both use the same checkpoints and final path.

The outline of a build (:func:`plan`, :func:`provenance`, :func:`run_chunks`, :func:`finish`) is shared with
the incremental refresh (:mod:`flows.build.refresh`).
"""
from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed

from flows.runtime import banks
from flows.core.data import data_source, load_problems, select
from flows.runtime.locks import FileLock, lock_path, produce_missing
from flows.core.problem import Problem, normalize_text
from flows.runtime.progress import current, metered, tracking
from flows.build.bank_report import build_report, publish
from flows.runtime.retries import retry_model_errors
from flows.core.schema import SHOT_SCHEMA, to_table
from flows.core.specs import BuildError, BuildSpec, config_key
from flows.build.rounds import ChunkResult, ChunkStats, Provenance
from flows.build.sources import MODES, Chunk, chunks, key_config, source_for
from generators import Generator, GeneratorConfig, load_generator

__all__ = ["MODES", "build_bank", "chunks", "sharded"]
from flows.core.tasks import task as get_task


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_model_errors)
def load_selection(spec: BuildSpec, data_dir: str | None) -> list[Problem]:
    return selected_problems(spec, data_dir)


def selected_problems(spec: BuildSpec, data_dir: str | None) -> list[Problem]:
    """The problems a build starts from; raises :class:`BuildError` when the selection is empty."""
    sel = spec.selection
    excluded = source_for(spec.mode).excluded_questions(spec)
    pool = [p for p in load_problems(sel.task, sel.split, data_dir) if normalize_text(p.question) not in excluded]
    problems = select(pool, limit=sel.limit, seed=sel.seed, subjects=sel.subjects, levels=sel.levels)
    if not problems:
        raise BuildError(f"the selection is empty: task={sel.task} split={sel.split} subjects={list(sel.subjects)} "
                         f"levels={list(sel.levels)} limit={sel.limit}")
    return problems


def resolve_generator(spec: BuildSpec, ref: GeneratorConfig | Generator | None) -> Generator | None:
    """The generator a chunk uses, where the chunk runs: none for sources that need no model; a config (by default
    the spec's model and seed) is loaded once per process."""
    if not source_for(spec.mode).needs_model:
        return None
    with current().loading():
        if ref is None:
            ref = load_generator(spec.model, seed=spec.selection.seed)
        elif isinstance(ref, GeneratorConfig):
            ref = ref.resolve()
    return metered(ref)


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[5, 20, 60], retry_condition_fn=retry_model_errors)
def run_chunk(spec: BuildSpec, ref: GeneratorConfig | Generator | None, chunk: Chunk, prov: Provenance,
              state: Any) -> ChunkResult:
    """Produce the shot rows of one chunk (one batched model call per round), in the flow or in a worker."""
    generator = resolve_generator(spec, ref)
    if generator is not None:
        prov = replace(prov, model=generator.model_id)
    return source_for(spec.mode).run_chunk(spec, generator, chunk, prov, state, _round_done)


def _round_done(message: str) -> None:
    """A reinforced chunk finished a round: log it and show it (a no-op display in Dask workers)."""
    get_run_logger().info(message)
    current().round_done(message)


def run_chunks(spec: BuildSpec, ref: GeneratorConfig | Generator | None, parts: list[Chunk], prov: Provenance,
               state: Any, store: banks.ChunkStore, *, submit: bool) -> tuple[pa.Table, list[ChunkStats]]:
    """Run the chunks missing from ``store`` with :func:`run_chunk`, checkpoint each as it finishes, and return all
    chunks' rows in chunk order and their stats.

    With ``submit`` the missing chunks are submitted to the flow's task runner at once; otherwise they run one after
    the other, and a sequential source sees each chunk's rows, reused or new, before the next chunk runs.

    Each chunk is made under its checkpoint's lock (:mod:`flows.runtime.locks`), so concurrent builds of the same
    configuration share the work: a chunk another process is making is skipped, then waited for and reused.
    """
    if submit and source_for(spec.mode).sequential:
        raise BuildError(f"{spec.mode} mode de-duplicates each chunk against the chunks before it, so its chunks "
                         "cannot run in parallel; build it with build_bank (manyshot bank build)")
    logger = get_run_logger()
    paths = [store.path(c.key) for c in parts]
    reused = sum(p.exists() for p in paths)
    if reused:
        logger.info("%d/%d chunks reused from checkpoints", reused, len(parts))
    counted: set[int] = set()

    def count(i: int, made: bool) -> None:  # the progress display: chunks done, problems solved
        if i not in counted:
            counted.add(i)
            current().advance(solved=len(set(store.get(parts[i].key).column("problem_id").to_pylist())),
                              reused=not made)

    for i, path in enumerate(paths):
        if path.exists():
            count(i, made=False)

    def save(i: int, result: ChunkResult) -> None:
        store.put(parts[i].key, to_table(result.rows, SHOT_SCHEMA), result.stats.to_json())
        logger.info("chunk %d/%d: %d problems, %d shots kept", i + 1, len(parts), len(parts[i].problems),
                    len(result.rows))
        count(i, made=True)

    def run_here(i: int) -> None:
        save(i, run_chunk(spec, ref, parts[i], prov, state))

    def waiting(i: int) -> None:
        logger.info("chunk %d/%d is being made by another process (%s); waiting to reuse it", i + 1, len(parts),
                    lock_path(paths[i]))

    if submit:
        _submit_missing(paths, lambda i: run_chunk.submit(spec, ref, parts[i], prov, state), save, waiting)
    elif not source_for(spec.mode).sequential:
        produce_missing(paths, run_here, on_wait=waiting)
    else:
        for i, chunk in enumerate(parts):  # in order: a chunk depends on the chunks before it
            produce_missing([paths[i]], lambda _: run_here(i), on_wait=lambda _: waiting(i))
            source_for(spec.mode).after_chunk(state, store.get(chunk.key))
    for i in range(len(parts)):  # chunks another process made while this one waited
        count(i, made=False)
    tables = [store.get(c.key) for c in parts]
    stats = [ChunkStats.from_json(store.stats(c.key)) for c in parts]
    return pa.concat_tables(tables) if tables else SHOT_SCHEMA.empty_table(), stats


def _submit_missing(paths: list[Path], submit_one: Callable, save: Callable, waiting: Callable[[int], None]) -> None:
    """Submit every missing chunk whose lock this process gets, all at once, saving each as it completes; then
    wait for the chunks other processes hold (and make any whose holder died before writing it)."""
    held: dict[int, FileLock] = {}
    try:
        for i, path in enumerate(paths):
            if path.exists():
                continue
            lock = FileLock(path)
            if not lock.acquire():
                continue  # another process is making it: waited for below
            if path.exists():  # written between the check and the lock
                lock.release()
            else:
                held[i] = lock
        futures = {submit_one(i): i for i in held}
        for future in as_completed(list(futures)):
            i = futures[future]
            save(i, future.result())
            held.pop(i).release()
    finally:
        for lock in held.values():
            lock.release()
    produce_missing(paths, lambda i: save(i, submit_one(i).result()), on_wait=waiting)


@dataclass
class Plan:
    """What a build makes: the problems it builds, the bank's key config and path, the checkpoint store, and
    (unless the bank is ``built`` already) the state its source's chunks share."""

    problems: list[Problem]
    key_config: dict
    path: Path
    store: banks.ChunkStore
    built: bool = False
    state: Any = None


def plan(spec: BuildSpec, data_dir: str | None, out: str | None) -> Plan:
    """Validate the spec, select the problems and derive the bank's path; then, unless that bank is already
    built, the source's shared state (and the problems left to build)."""
    if spec.require_valid_steps and not source_for(spec.mode).checks_steps:
        raise BuildError(f"require_valid_steps applies to reinforced builds, not {spec.mode!r}")
    task_def = get_task(spec.selection.task)
    if spec.mode == "ground-truth" and not task_def.has_rationale:
        raise BuildError(f"{task_def.source}: a ground-truth bank needs gold rationales; this task file has no "
                         "[fields] rationale (build reinforced, unsupervised or generated banks instead)")
    root = Path(out) if out else banks.DEFAULT_ROOT
    problems = load_selection(spec, data_dir)
    bank_config = key_config(spec) | {"problems": config_key([(p.id, p.answer) for p in problems])}
    path = banks.bank_path(root, spec.selection.task, spec.mode, config_key(bank_config))
    store = banks.ChunkStore(root, config_key(key_config(spec, with_limit=False)))
    if path.exists():
        print(f"bank already built: {path}")
        return Plan(problems, bank_config, path, store, built=True)
    state, problems = source_for(spec.mode).prepare(spec, problems, data_dir)
    return Plan(problems, bank_config, path, store, state=state)


def provenance(spec: BuildSpec, data_dir: str | None) -> Provenance:
    """A new run's provenance; the model is filled in where a chunk runs (:func:`run_chunk`)."""
    task_def = get_task(spec.selection.task)
    where = f"{Path(task_def.source).name}@{task_def.digest}" if task_def.source else data_source(data_dir)
    prov = Provenance(run_id=str(uuid.uuid4()), dataset=f"{spec.selection.task}:{where}",
                      split=spec.selection.split)
    return source_for(spec.mode).provenance(spec, prov)


def finish(spec: BuildSpec, work: Plan, table: pa.Table, stats: list[ChunkStats], run_id: str) -> str:
    """Write the bank of a finished build (never an empty one) and publish its report; return its path. A bank
    is written once: when a concurrent run of the same build wrote it first, that bank is the result."""
    if table.num_rows == 0:
        raise BuildError(empty_reason(spec, stats))
    report = build_report(source_for(spec.mode), work.problems, table, stats)
    meta = {"config": work.key_config | {"task": spec.selection.task, "model": table_models(table)},
            "created_at": datetime.now(timezone.utc).isoformat(), "run_id": run_id, "report": report}
    if get_task(spec.selection.task).definition is not None:
        meta["task_definition"] = dict(get_task(spec.selection.task).definition)
    if not banks.publish_bank(work.path, table, meta):
        print(f"bank already built by a concurrent run: {work.path}")
        return str(work.path)
    publish(report, title=f"bank {work.path.name}", key="bank-report")
    print(f"bank: {work.path}")
    return str(work.path)


def table_models(table: pa.Table) -> str | None:
    """The models a bank's rows name, comma-separated (None when no row names one)."""
    return ",".join(sorted({m for m in table.column("model").to_pylist() if m})) or None


@flow(name="build-bank", validate_parameters=False, log_prints=True)
def build_bank(spec: BuildSpec, data_dir: str | None = None, out: str | None = None,
               generator: GeneratorConfig | Generator | None = None, submit: bool = False) -> str:
    """Build (or resume, or reuse) the bank for ``spec``; return its path. ``submit`` runs the chunks concurrently
    on the flow's task runner (:func:`sharded`)."""
    work = plan(spec, data_dir, out)
    if work.built:
        return str(work.path)
    prov = provenance(spec, data_dir)
    parts = chunks(work.problems, spec.chunk_size)
    with tracking(len(parts), "chunks", f"bank {spec.selection.task} {spec.mode}"):
        table, stats = run_chunks(spec, generator, parts, prov, work.state, work.store, submit=submit)
    return finish(spec, work, table, stats, prov.run_id)


def dask_runner(workers: int = 2, address: str | None = None, processes: bool = True):
    """A DaskTaskRunner: an existing cluster at ``address``, else a local one with ``workers`` single-threaded
    worker processes (one generator each)."""
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": processes,
                                          "dashboard_address": None})


def sharded(workers: int = 2, address: str | None = None, processes: bool = True) -> Callable[..., str]:
    """``build_bank`` with its chunks on a Dask cluster: ``sharded(2)(spec, data_dir=..., out=..., generator=...)``."""
    return functools.partial(build_bank.with_options(task_runner=dask_runner(workers, address, processes)),
                             submit=True)


def empty_reason(spec: BuildSpec, stats: list[ChunkStats]) -> str:
    total = ChunkStats.total(stats)
    if total.samples and total.empty == total.samples:
        return f"the model returned no text for any of {total.samples} samples; no bank was written"
    reason = f"no shot was kept ({spec.mode}, {total.samples} samples); no bank was written"
    if total.truncated:
        reason += (f"; {total.truncated} of {total.samples} responses were cut at --max-tokens "
                   f"{spec.rounds.max_tokens}: raise --max-tokens (e.g. 512)")
    return reason
