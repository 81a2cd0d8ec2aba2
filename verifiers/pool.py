"""A small pool of worker processes in which every job has a hard deadline.

* Workers are plain child interpreters (``python -I -c ...``) started with ``subprocess``: no
  ``fork`` of a possibly threaded parent, and unlike multiprocessing's spawn/forkserver the
  caller's ``__main__`` is never re-imported. Each worker imports sympy and latex2sympy once,
  then serves jobs over a pair of pipes (pickled tuples of plain data).
* Workers start lazily, are shared by all threads, and are stopped at interpreter exit.
* A job that overruns its deadline gets its worker killed (SIGKILL); the caller gets
  ``("error", "timeout")`` and a replacement starts in the background. A worker that dies
  mid-job yields ``("error", "worker_crashed: ...")``. Either way the pool keeps working.
* Thread-safe: any number of threads may call :meth:`WorkerPool.run` at once; at most
  ``size`` jobs run concurrently and the others wait for a free worker.
"""
from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path

START_TIMEOUT_S = 120.0
_ROOT = str(Path(__file__).resolve().parent.parent)
_BOOT = "import sys; sys.path.insert(0, {root!r}); from verifiers.worker import serve; serve({r}, {w})"

_test_delay_s = 0.0


def set_test_delay(seconds: float) -> None:
    """Test-only injection point: make every following job sleep ``seconds`` in its worker
    before comparing (simulates a slow parse, to exercise deadlines)."""
    global _test_delay_s
    _test_delay_s = float(seconds)


def test_delay() -> float:
    return _test_delay_s


class WorkerStartError(RuntimeError):
    """A worker process did not come up."""


class _Worker:
    def __init__(self) -> None:
        child_r, parent_w = os.pipe()
        parent_r, child_w = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOT.format(root=_ROOT, r=child_r, w=child_w)],
                pass_fds=(child_r, child_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, close_fds=True,
            )
        finally:
            os.close(child_r)
            os.close(child_w)
        self.send_conn = Connection(parent_w, readable=False)
        self.recv_conn = Connection(parent_r, writable=False)
        if not self.recv_conn.poll(START_TIMEOUT_S):
            self.kill()
            raise WorkerStartError("worker did not start in time")
        try:
            self.recv_conn.recv()
        except EOFError as exc:
            self.kill()
            raise WorkerStartError("worker exited during start") from exc

    def call(self, job: tuple, timeout_s: float) -> tuple | None:
        """The job's result, or None when the deadline passed (the worker is then unusable)."""
        self.send_conn.send(job)
        if not self.recv_conn.poll(timeout_s):
            return None
        return self.recv_conn.recv()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(30)
        self.send_conn.close()
        self.recv_conn.close()

    def stop(self) -> None:
        try:
            self.send_conn.send(None)
        except OSError:
            self.process.kill()
        try:
            self.process.wait(1)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)
        self.send_conn.close()
        self.recv_conn.close()


class WorkerPool:
    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._live: set[_Worker] = set()
        self._starting = 0
        self._closed = False
        self.restarts = 0
        self.last_start_error: str | None = None

    def run(self, job: tuple, timeout_s: float) -> tuple:
        """Send ``job`` to a worker; wait at most ``timeout_s`` seconds for its result."""
        try:
            worker = self._acquire()
        except WorkerStartError as exc:
            return ("error", f"worker_start_failed: {exc}")
        result = None
        try:
            result = worker.call(job, timeout_s)
        except (EOFError, OSError) as exc:
            return ("error", f"worker_crashed: {type(exc).__name__}")
        finally:
            if result is None:
                self._retire(worker)
            else:
                self._release(worker)
        return ("error", "timeout") if result is None else result

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise WorkerStartError("pool is shut down")
                if self._idle:
                    return self._idle.pop()
                if len(self._live) + self._starting < self.size:
                    self._starting += 1
                    break
                self._cond.wait()
        worker = None
        try:
            worker = _Worker()
        finally:
            with self._cond:
                self._starting -= 1
                if worker is not None:
                    self._live.add(worker)
                self._cond.notify_all()
        return worker

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            if not self._closed:
                self._idle.append(worker)
                self._cond.notify()
                return
        self._retire(worker)

    def _retire(self, worker: _Worker) -> None:
        with self._cond:
            self._live.discard(worker)
            self.restarts += 1
            self._cond.notify_all()
        worker.kill()
        threading.Thread(target=self._replace, name="verifiers-pool-restart", daemon=True).start()

    def _replace(self) -> None:
        with self._cond:
            if self._closed or len(self._live) + self._starting >= self.size:
                return
            self._starting += 1
        worker = None
        try:
            worker = _Worker()
        except WorkerStartError as exc:
            self.last_start_error = str(exc)
        finally:
            with self._cond:
                self._starting -= 1
                if worker is not None and not self._closed:
                    self._live.add(worker)
                    self._idle.append(worker)
                    worker = None
                self._cond.notify_all()
        if worker is not None:
            worker.stop()

    def warm(self) -> None:
        """Start all workers now (optional; they otherwise start on first use)."""
        threads = [threading.Thread(target=self._replace, daemon=True) for _ in range(self.size)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def shutdown(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            for worker in idle:
                self._live.discard(worker)
            self._cond.notify_all()
        for worker in idle:
            worker.stop()


_shared: WorkerPool | None = None
_shared_pid: int | None = None
_shared_lock = threading.Lock()


def get_pool() -> WorkerPool:
    """The process-wide pool (one worker per core), created on first use and after a fork."""
    global _shared, _shared_pid
    with _shared_lock:
        if _shared is None or _shared_pid != os.getpid():
            _shared = WorkerPool(os.cpu_count() or 1)
            _shared_pid = os.getpid()
        return _shared


def shutdown() -> None:
    """Stop the shared pool's workers (also registered to run at exit)."""
    global _shared
    with _shared_lock:
        pool = _shared if _shared_pid == os.getpid() else None
        _shared = None
    if pool is not None:
        pool.shutdown()


atexit.register(shutdown)
