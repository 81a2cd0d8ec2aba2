"""Per-checkpoint file locks, so processes that need the same checkpoint make it once and share it.

A checkpoint ``X`` (a chunk of a bank build, an evaluation cell: any file written once, atomically) is
guarded by the lock file ``.X.lock`` beside it, held with ``fcntl.flock``. The kernel drops a flock when
its holder exits for any reason, ``kill -9`` included, so a lock is never stale and needs no PID or age
heuristics. Locks are advisory and meant for local file systems.

Usage, for one checkpoint::

    with claim(path) as got:            # try once, do not wait
        if got and not path.exists():
            make(path)                  # nobody else is making it now
    with claim(path, wait=True):        # wait for whoever holds it
        ...

and for a list of checkpoints, :func:`produce_missing`: each missing one is made by exactly one process;
the ones another process is making are skipped at first, then waited for and reused (or made here, if
that process died before writing them).
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence


def lock_path(path: Path | str) -> Path:
    """The lock file guarding checkpoint ``path``: ``.<name>.lock`` in the same folder."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


class FileLock:
    """An exclusive ``flock`` on :func:`lock_path` of a checkpoint. Not re-entrant; one holder at a time, also
    between threads of one process (each acquire opens its own file description)."""

    def __init__(self, path: Path | str):
        self.path = lock_path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait: bool = False) -> bool:
        """Take the lock; with ``wait`` block until it is free, else return False at once if it is held."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this FileLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            if self._same_file(fd):
                self._fd = fd
                return True
            os.close(fd)  # the previous holder removed the file while we waited: lock the current one

    def _same_file(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)

    def release(self) -> None:
        """Remove the lock file and drop the lock (removing first, while still held, is what keeps a waiter
        from locking a file nobody else can see)."""
        if self._fd is None:
            raise RuntimeError(f"{self.path} is not held")
        try:
            os.unlink(self.path)
        except FileNotFoundError:  # removed by hand while held: the lock itself is still ours to drop
            pass
        finally:
            os.close(self._fd)
            self._fd = None


@contextmanager
def claim(path: Path | str, *, wait: bool = False) -> Iterator[bool]:
    """Hold the lock of checkpoint ``path`` for the ``with`` body; yields whether it is held.

    Without ``wait`` the attempt does not block (False: another process holds it now); with ``wait`` it blocks
    until the lock is free and always yields True. Check for the checkpoint again once the lock is held: the
    previous holder may have written it.
    """
    lock = FileLock(path)
    got = lock.acquire(wait=wait)
    try:
        yield got
    finally:
        if got:
            lock.release()


def produce_missing(paths: Sequence[Path], make: Callable[[int], None], *,
                    done: Callable[[Path], bool] = Path.exists,
                    on_wait: Callable[[int], None] | None = None) -> list[int]:
    """Call ``make(i)`` for every checkpoint ``paths[i]`` that is not ``done``, holding its lock, so that
    concurrent callers make each checkpoint once. ``make(i)`` must write ``paths[i]`` (atomically).

    Checkpoints another process holds are skipped on the first pass and waited for on the second
    (``on_wait(i)`` is called before blocking); one that is still missing when its lock frees up (its holder
    died) is made here. Returns the indices made by this call, in the order they were made.
    """
    made: list[int] = []
    held_elsewhere: list[int] = []
    for i, path in enumerate(paths):
        if done(path):
            continue
        with claim(path) as got:
            if not got:
                held_elsewhere.append(i)
            elif not done(path):
                make(i)
                made.append(i)
    for i in held_elsewhere:
        if done(paths[i]):
            continue
        if on_wait is not None:
            on_wait(i)
        with claim(paths[i], wait=True):
            if not done(paths[i]):
                make(i)
                made.append(i)
    return made
