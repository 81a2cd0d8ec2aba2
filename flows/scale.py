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

from dataclasses import dataclass, replace

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.build import NEEDS_MODEL, BuildSpec, _chunks, finish, plan, provenance, run_chunk, \
    run_chunks, table_models
from flows.data import Problem
from flows.retries import retry_model_errors
from flows.shots import BuildError, Provenance
from generators import Generator, load_generator


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


@flow(name="build-bank-sharded", validate_parameters=False, log_prints=True)
def build_bank_sharded(spec: BuildSpec, data_dir: str | None = None, out: str | None = None,
                       generator: GeneratorRef | Generator | None = None) -> str:
    """``build_bank`` with the chunks run concurrently on the flow's task runner; returns the bank path.

    Use ``build_bank_sharded.with_options(task_runner=dask_runner(n))`` (or :func:`sharded`) for workers.
    """
    if spec.mode == "generated":
        raise BuildError("generated mode de-duplicates each chunk against the chunks before it, so its chunks "
                         "cannot run in parallel; build it with build_bank (manyshot bank build)")
    work = plan(spec, data_dir, out)
    if work.built:
        return str(work.path)
    prov = provenance(spec, data_dir, generator)
    table, stats = run_chunks(spec, generator, _chunks(work.problems, spec.chunk_size), prov, work.context, work.store,
                              submit=True, chunk_task=shard_chunk)
    return finish(spec, work, table, stats, prov.run_id, table_models(table))


def sharded(workers: int = 2, address: str | None = None, processes: bool = True):
    """``build_bank_sharded`` on a Dask cluster: ``sharded(2)(spec, data_dir=..., out=..., generator=...)``."""
    return build_bank_sharded.with_options(task_runner=dask_runner(workers, address, processes))
