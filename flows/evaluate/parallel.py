"""The pass over a sweep's cells: one cell at a time, or one cell per endpoint of a multi-endpoint generator.

An OpenAI-compatible generator with several endpoints routes the prompts of one cell (they share their shot
prefix) to one server, so the prefix is computed once. Cells run one after another would keep one server busy
and the others idle; so with N endpoints the sweep runs N cells at a time, in N worker threads of this process.
A worker takes a whole *chain*, the cells of one (bank, seed, selection, order) with K ascending, and runs them
in turn: a chain's prompts extend one shot prefix, which the router keeps on one server (cached there), while
the other workers' chains, other prefixes, go to the other servers. Without endpoints (the in-process engine,
the fake generator) the cells run one at a time in the calling thread, as they always did.

Either way the pass has two rounds: every cell is reused, made or skipped, except those whose lock another
process (or, in parallel, another worker: two orders' shared ``K=max`` resolution, a ``max`` cell that resolved
to a listed K) holds; then those are waited for and reused, or made here. Results do not depend on the order the
cells finish in: each cell is a file of its own, and the sweep combines them by cell number.

Threads and signals: Python runs signal handlers in the main thread only. A worker's cell is never interrupted
(:func:`~flows.runtime.interrupt.deferred_signals` and ``signals_allowed`` do nothing outside the main thread);
the main thread only waits for the workers. Ctrl-C or SIGTERM there stops the pass: the workers start no
further cell and finish (and write) the ones in flight, which the main thread waits for, then the sweep stops
with :class:`~flows.runtime.interrupt.CellsInterrupted` as before, its count of kept cells exact. A second
signal while it waits stops at once: the workers (daemon threads) are abandoned with the process, their
Prefect bookkeeping may log errors on the way out, and a cell being written leaves at most a hidden temporary
file (cells are written atomically), which the next run removes. An error in a cell stops the pass the same
way, then the error of the first failed chain is raised. Each worker runs in a copy of the caller's context,
so the Prefect task of a cell runs inside the evaluation's flow run.

Shared state: the workers share the sweep's ``CellRun``; each sets only its own cells' entries (``done``,
``skipped``, the progress files), ``recomputed`` only ever becomes True, and the generator is already loaded (it
is what has the endpoints), so no worker loads a model. Cell and ``K=max`` locks are ``flock`` s on a file
description of their own, so they exclude other threads of this process as they exclude other processes: a
``max`` resolution two orders share is made once, the other order's cell waits for it in the second round.
Progress updates take turns (:class:`~flows.runtime.progress.Progress` has a lock).
"""
from __future__ import annotations

import contextvars
import logging
import queue
import threading
from typing import Any, Callable, Sequence

from flows.runtime.progress import current

Step = Callable[[int, Any], bool]


def endpoint_count(generator: Any) -> int:
    """How many endpoints ``generator`` sends requests to; 0 for one without (an in-process engine, a fake)."""
    return len(getattr(generator, "endpoints", None) or ())


def sweep_cells(run: Any, todo: Sequence[Any], logger: logging.Logger | logging.LoggerAdapter) -> None:
    """Reuse, make or skip every cell of ``todo`` (numbered from 1) through ``run.step``, ``run`` being the
    sweep's :class:`~flows.evaluate.flow.CellRun`: in parallel when its generator has several endpoints."""
    workers = endpoint_count(run.generator)
    numbered = list(enumerate(todo, start=1))
    if workers < 2:
        deferred = [(n, cell) for n, cell in numbered if not run.step(n, cell, wait=False)]
        for n, cell in deferred:
            key = cell.key
            logger.info("cell %d/%d %s: another process is computing it; waiting to reuse it", n,
                        len(todo), key)
            current().note(f"waiting for cell {n} ({key}) from another process")
            run.step(n, cell, wait=True)
        return
    logger.info("%d endpoints: running up to %d cells at a time", workers, workers)
    deferred = run_chains(lambda n, cell: run.step(n, cell, wait=False), chains(numbered), workers, logger)
    for n, cell in deferred:
        logger.info("cell %d/%d %s: another worker or process is computing it; waiting to reuse it", n,
                    len(todo), cell.key)
    if deferred:
        current().note(f"waiting for {len(deferred)} cells held by another worker or process")
        run_chains(lambda n, cell: run.step(n, cell, wait=True), chains(deferred), workers, logger)


def chains(numbered: Sequence[tuple[int, Any]]) -> list[list[tuple[int, Any]]]:
    """The numbered cells in chains: one per (bank, seed, selection, order), its K values in sweep order
    (ascending), the chains in the order of their first cell. A chain's prompts extend one shot prefix."""
    out: dict[tuple, list[tuple[int, Any]]] = {}
    for n, cell in numbered:
        out.setdefault((cell.label, cell.seed, cell.select, cell.order), []).append((n, cell))
    return list(out.values())


def run_chains(step: Step, cells: Sequence[Sequence[tuple[int, Any]]], workers: int,
               logger: logging.Logger | logging.LoggerAdapter) -> list[tuple[int, Any]]:
    """Call ``step(n, cell)`` for every numbered cell of every chain, in up to ``workers`` daemon threads: each
    takes the next chain and steps through its cells in order. Return the cells whose step returned False,
    in cell order. The calling thread waits (interruptibly); see the module docstring for errors and signals."""
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for index, chain in enumerate(cells):
        todo.put((index, chain))
    results: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            try:
                index, chain = todo.get_nowait()
            except queue.Empty:
                return
            held = []
            try:
                for n, cell in chain:
                    if stop.is_set():
                        return
                    if not step(n, cell):
                        held.append((n, cell))
            except BaseException as exc:  # handed to the waiting thread, which raises it
                results.put((index, held, exc))
                return
            results.put((index, held, None))

    threads = [threading.Thread(target=contextvars.copy_context().run, args=(work,), daemon=True,
                                name=f"eval-cells-{i + 1}") for i in range(min(workers, len(cells)))]
    for thread in threads:
        thread.start()
    outcomes: dict[int, tuple[list[tuple[int, Any]], BaseException | None]] = {}
    try:
        while len(outcomes) < len(cells):
            index, held, error = results.get()
            outcomes[index] = (held, error)
            if error is not None:
                break
    except BaseException:  # Ctrl-C or SIGTERM in this thread
        stop.set()
        logger.warning("interrupted: finishing the cells in flight (interrupt again to abandon them)")
        for thread in threads:
            thread.join()  # a second signal raises out of here
        raise
    if any(error is not None for _, error in outcomes.values()):
        stop.set()
        for thread in threads:
            thread.join()
        while not results.empty():
            index, held, error = results.get()
            outcomes[index] = (held, error)
        raise next(error for _, (_, error) in sorted(outcomes.items()) if error is not None)
    return sorted((item for held, _ in outcomes.values() for item in held), key=lambda item: item[0])
