"""Scale-out: shard a bank build's chunks over workers through a Prefect task runner.

:func:`build_bank_sharded` is :func:`flows.build.build_bank` with the chunks submitted as tasks instead
of run one after the other. With :func:`dask_runner` each chunk runs in a Dask worker process (a local
cluster, or a running ``dask-scheduler`` given by address), and each worker resolves its own generator:

* a :class:`GeneratorRef` (model name / endpoints) is resolved in the worker with
  :func:`generators.load_generator`, once per worker process (the loader caches engines);
* a picklable generator instance (e.g. :class:`generators.fake.FakeGenerator`) is shipped as is.

The chunk work itself is :func:`flows.build.run_chunk` (same code, same retry policy); chunk seeds
depend only on the chunk index, so a sharded bank has the same rows as a single-worker bank (only
``created_at`` and ``run_id`` differ). Checkpoints and the final path are the ones ``build_bank`` uses,
so a sharded build resumes a serial one and vice versa. Results come back to the flow process, which
does all the writing: workers need no shared disk.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed

from flows import bank as banks
from flows.build import BuildSpec, MODES, _chunks, _empty_reason, _iterate_context, load_selection, \
    retry_model_errors, run_chunk
from flows.data import Problem
from flows.report import build_report, publish
from flows.schema import SHOT_SCHEMA, to_table
from flows.shots import BuildError, Provenance
from generators import Generator, load_generator
from generators.prompts import cot_template

NEEDS_MODEL = ("reinforced", "generated")


@dataclass(frozen=True)
class GeneratorRef:
    """A picklable recipe for a generator, resolved where the chunk runs (once per worker process)."""

    model: str = "embedded"
    endpoints: tuple[str, ...] = ()
    seed: int = 0
    max_model_len: int | None = None

    def resolve(self) -> Generator:
        return load_generator(self.model, endpoints=self.endpoints, seed=self.seed, max_model_len=self.max_model_len)


def worker_generator(spec: BuildSpec, ref: GeneratorRef | Generator | None) -> Generator | None:
    """The generator a chunk uses: like ``build_bank``, a model is only loaded for modes that need one."""
    if ref is None or isinstance(ref, GeneratorRef):
        if spec.mode not in NEEDS_MODEL:
            return None
        return (ref or GeneratorRef(spec.model, seed=spec.selection.seed)).resolve()
    return ref


def _shard_chunk(spec: BuildSpec, ref: GeneratorRef | Generator | None, problems: list[Problem], index: int,
                 prov: Provenance, context: dict) -> tuple[list[dict], dict]:
    generator = worker_generator(spec, ref)
    if generator is not None:
        prov = replace(prov, model=generator.model_id)
    return run_chunk.fn(spec, generator, problems, index, prov, context)


shard_chunk = task(_shard_chunk, name="shard-chunk", cache_policy=NO_CACHE, retries=run_chunk.retries,
                   retry_delay_seconds=run_chunk.retry_delay_seconds, retry_condition_fn=retry_model_errors)
"""``run_chunk`` with the generator resolved inside the task (in the worker); same retry policy."""


def dask_runner(workers: int = 2, address: str | None = None, processes: bool = True):
    """A DaskTaskRunner: an existing cluster at ``address``, else a local one with ``workers`` single-threaded
    worker processes (one generator each)."""
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": processes,
                                          "dashboard_address": None})


def chunk_key(index: int, chunk: Sequence[Problem]) -> str:
    """The checkpoint key of a chunk, as :func:`flows.build.build_bank` computes it."""
    return banks.config_key({"index": index, "ids": [p.id for p in chunk], "n": len(chunk)})


def run_chunks(spec: BuildSpec, ref: GeneratorRef | Generator | None, chunks: list[list[Problem]], prov: Provenance,
               context: dict, store: banks.ChunkStore, *, submit: bool, chunk_task=None) -> tuple[pa.Table, list[dict]]:
    """Run the chunks missing from ``store`` (submitted to the flow's task runner when ``submit``, else one
    after the other), checkpoint each as it finishes, and return all chunks' rows in chunk order and their stats."""
    logger = get_run_logger()
    chunk_task = chunk_task or shard_chunk
    keys = [chunk_key(i, c) for i, c in enumerate(chunks)]
    todo = [i for i, k in enumerate(keys) if store.get(k) is None]
    if len(todo) < len(chunks):
        logger.info("%d/%d chunks reused from checkpoints", len(chunks) - len(todo), len(chunks))

    def save(i: int, result: tuple[list[dict], dict]) -> None:
        rows, stats = result
        store.put(keys[i], to_table(rows, SHOT_SCHEMA), stats)
        logger.info("chunk %d/%d: %d problems, %d shots kept", i + 1, len(chunks), len(chunks[i]), len(rows))

    if submit and todo:
        futures = {chunk_task.submit(spec, ref, chunks[i], i, prov, context): i for i in todo}
        for future in as_completed(list(futures)):
            save(futures[future], future.result())
    else:
        for i in todo:
            save(i, chunk_task(spec, ref, chunks[i], i, prov, context))
    parts = [store.get(k) for k in keys]
    return pa.concat_tables(parts) if parts else SHOT_SCHEMA.empty_table(), [store.stats(k) for k in keys]


def _models(table: pa.Table) -> str | None:
    models = sorted({m for m in table.column("model").to_pylist() if m})
    return ",".join(models) or None


@flow(name="build-bank-sharded", validate_parameters=False, log_prints=True)
def build_bank_sharded(spec: BuildSpec, data_dir: str | None = None, out: str | None = None,
                       generator: GeneratorRef | Generator | None = None) -> str:
    """``build_bank`` with the chunks run concurrently on the flow's task runner; returns the bank path.

    Use ``build_bank_sharded.with_options(task_runner=dask_runner(n))`` (or :func:`sharded`) for workers.
    """
    if spec.mode not in MODES:
        raise BuildError(f"unknown mode {spec.mode!r}; expected one of {MODES}")
    if spec.mode == "generated":
        raise BuildError("generated mode de-duplicates each chunk against the chunks before it, so its chunks "
                         "cannot run in parallel; build it with build_bank (manyshot bank build)")
    root = Path(out) if out else banks.DEFAULT_ROOT
    problems = load_selection(spec, data_dir)
    key_config = spec.key_config() | {"problems": banks.config_key([(p.id, p.answer) for p in problems])}
    path = banks.bank_path(root, spec.selection.task, spec.mode, banks.config_key(key_config))
    if path.exists():
        print(f"bank already built: {path}")
        return str(path)
    context: dict[str, Any] = {}
    if spec.iterate_from:
        context, problems = _iterate_context(spec, problems)
        if not problems:
            raise BuildError(f"{spec.iterate_from} already solves every selected problem")
    store = banks.ChunkStore(root, banks.config_key(spec.key_config(with_limit=False)))
    run_id = str(uuid.uuid4())
    prov = Provenance(run_id=run_id, dataset=f"{spec.selection.task}:{data_dir or 'hub'}", split=spec.selection.split,
                      model=None if generator is None or isinstance(generator, GeneratorRef) else generator.model_id)
    if spec.mode == "reinforced":
        template = cot_template(spec.selection.task, spec.few_shot)
        prov = replace(prov, template_id=template.id, template_hash=template.hash)
    table, stats = run_chunks(spec, generator, _chunks(problems, spec.chunk_size), prov, context, store, submit=True)
    if table.num_rows == 0:
        raise BuildError(_empty_reason(spec, stats))
    report = build_report(spec.mode, problems, table, stats)
    meta = {"config": key_config | {"task": spec.selection.task, "model": _models(table)},
            "created_at": datetime.now(timezone.utc).isoformat(), "run_id": run_id, "report": report}
    banks.write_bank(path, table, meta)
    publish(report, title=f"bank {path.name}", key="bank-report")
    print(f"bank: {path}")
    return str(path)


def sharded(workers: int = 2, address: str | None = None, processes: bool = True):
    """``build_bank_sharded`` on a Dask cluster: ``sharded(2)(spec, data_dir=..., out=..., generator=...)``."""
    return build_bank_sharded.with_options(task_runner=dask_runner(workers, address, processes))
