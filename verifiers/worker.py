"""The loop that runs in each worker process: receive a job, compare, send the result back.

Started by :mod:`verifiers.pool` as a child interpreter; it imports sympy and latex2sympy once,
then answers jobs until its pipe closes, warming the LaTeX parser between jobs while idle.
"""
from __future__ import annotations

import resource
import time
from multiprocessing.connection import Connection


MEMORY_LIMIT_BYTES = 2 * 1024 ** 3
IDLE_S = 0.05


def _limit_memory() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = MEMORY_LIMIT_BYTES if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT_BYTES, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def handle(job: tuple) -> tuple:
    """Run one job. Results are ``("ok", correct, method)`` or ``("error", message)``."""
    kind, gold, pred, delay_s = job
    if kind != "compare":
        return ("error", f"unknown_job: {kind!r}")
    if delay_s:
        time.sleep(delay_s)
    from verifiers import symbolic
    try:
        correct, method = symbolic.compare_symbolic(gold, pred)
    except symbolic.ParseFailure as exc:
        return ("error", f"parse_error: {exc}")
    except Exception as exc:  # job boundary: sympy raises many types; each is reported, not hidden
        return ("error", f"{type(exc).__name__}: {str(exc)[:200]}")
    return ("ok", correct, method)


def serve(read_fd: int, write_fd: int) -> None:
    """Serve jobs from ``read_fd`` until it closes or a ``None`` job arrives."""
    _limit_memory()
    from verifiers import symbolic

    symbolic.warm_up()  # pay sympy's lazy imports once, before announcing readiness

    jobs = Connection(read_fd, writable=False)
    results = Connection(write_fd, readable=False)
    results.send(("ready",))
    idle_work = iter(symbolic.IDLE_WARM_UP)
    while True:
        latex = None if jobs.poll(IDLE_S) else next(idle_work, None)
        if latex is not None:
            symbolic.idle_warm_up_step(latex)  # only after IDLE_S without a job; one parse a step
            continue
        try:
            job = jobs.recv()
        except EOFError:
            return
        if job is None:
            return
        results.send(handle(job))
