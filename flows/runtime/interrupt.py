"""Stopping an evaluation with Ctrl-C (SIGINT) or SIGTERM: what was kept, and the exit code.

Cell files are written once and atomically (a hidden temporary file renamed into place), so an evaluation
stopped at any point, ``kill -9`` included, keeps every finished cell and never a partial one: a killed
writer leaves at most a hidden ``.<cell>.*.tmp`` file, which nothing reads and the next run that computes
that cell removes. On SIGINT or SIGTERM the evaluation raises :class:`CellsInterrupted` with its
:class:`SweepProgress`; the CLI prints :attr:`Interrupted.report` and exits with ``128 + signal``.

The CLI's handlers (:func:`install_handlers`) raise at once in the project's own code, but defer a signal
that lands while Prefect's engine sets up or records a task run (:func:`deferred_signals`): Prefect's crash
handling fails there ("Task run is not set") and its error would hide the interrupt. The deferred signal is
raised as soon as that engine code returns, after the cell being saved is on disk.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised in the main thread. A KeyboardInterrupt, so Prefect records the run as crashed
    and re-raises it unchanged."""

    def __init__(self, signum: int = signal.SIGINT, report: str = ""):
        super().__init__(report or signal.Signals(signum).name)
        self.signum = signum
        self.report = report or (f"interrupted by {signal.Signals(signum).name}; finished checkpoints are kept: "
                                 "run the same command again to resume")


class _Signals:
    installed = False  # only the CLI turns the handlers on; flows run elsewhere keep Prefect's behaviour
    deferring = 0  # > 0 inside deferred_signals (and not inside signals_allowed)
    pending: int | None = None


def _handle(signum: int, frame: object) -> None:
    if _Signals.deferring:
        _Signals.pending = _Signals.pending or signum
        return
    raise Interrupted(signum)


def _raise_pending() -> None:
    signum, _Signals.pending = _Signals.pending, None
    if signum is not None:
        raise Interrupted(signum)


def install_handlers() -> Callable[[], None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` (the CLI's path for both); returns the undo function."""
    previous = {s: signal.signal(s, _handle) for s in (signal.SIGINT, signal.SIGTERM)}
    _Signals.installed, _Signals.pending = True, None

    def restore() -> None:
        _Signals.installed = False
        for s, handler in previous.items():
            signal.signal(s, handler)
    return restore


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while Prefect's engine runs (a task call and saving its result); raise on the way out.
    Nothing to hold outside the main thread (only it runs handlers): an evaluation's worker threads leave the
    counter alone."""
    if not _Signals.installed or threading.current_thread() is not threading.main_thread():
        yield
        return
    _Signals.deferring += 1
    try:
        yield
    finally:
        _Signals.deferring -= 1
        if not _Signals.deferring:
            _raise_pending()


@contextmanager
def signals_allowed() -> Iterator[None]:
    """Project code that may stop anywhere (the model call), also inside :func:`deferred_signals`. Takes SIGTERM
    back from the handler Prefect's flow engine installs for the flow's duration (it restores ours at the end)."""
    if not _Signals.installed or threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGTERM) is not _handle:
        signal.signal(signal.SIGTERM, _handle)
    saved, _Signals.deferring = _Signals.deferring, 0
    try:
        _raise_pending()
        yield
    finally:
        _Signals.deferring = saved


def signal_number(exc: BaseException) -> int:
    """The signal behind an interrupt: :class:`Interrupted`, Prefect's ``TerminationSignal``, or Ctrl-C."""
    return getattr(exc, "signum", None) or getattr(exc, "signal", None) or signal.SIGINT


def exit_code(exc: BaseException) -> int:
    """The shell's convention for a process stopped by a signal: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + signal_number(exc)


@dataclass
class SweepProgress:
    """The cells of one evaluation sweep as this process knows them: each cell's file once its K is known, and
    the cells that were skipped. Counts are read from disk when asked, so they are exact at any moment."""

    cells_dir: Path
    total: int
    files: dict[int, Path] = field(default_factory=dict)  # cell number -> its file
    skipped: set[int] = field(default_factory=set)

    @property
    def finished(self) -> int:
        return sum(path.exists() for path in self.files.values())

    def message(self, context: str = "") -> str:
        """``interrupted: [context]3 of 7 cells finished and kept in DIR; run the same command again to ...``"""
        finished, skipped = self.finished, len(self.skipped)
        left = self.total - finished - skipped
        kept = f"{finished} of {self.total} cells finished and kept in {self.cells_dir}"
        if skipped:
            kept += f" ({skipped} skipped)"
        then = f"compute the other {left}" if left else "write the results"
        return f"interrupted: {context}{kept}; run the same command again to {then}"


class CellsInterrupted(Interrupted):
    """An evaluation stopped by a signal; :attr:`progress` says which cells were kept."""

    def __init__(self, progress: SweepProgress, signum: int, context: str = ""):
        self.progress = progress
        super().__init__(signum, progress.message(context))


def describe(exc: BaseException) -> str:
    """What the CLI prints for an interrupt: the evaluation's count of kept cells, or the generic note."""
    return exc.report if isinstance(exc, Interrupted) else Interrupted(signal_number(exc)).report


def start_prefect_server_shielded() -> None:
    """Start Prefect's temporary API server now (only when no ``PREFECT_API_URL`` is set), with SIGINT blocked.

    That server is a child process in the terminal's process group, so Ctrl-C reaches it too; it would shut
    down before the interrupted flow records its end, and Prefect's failed state update (after a minute of
    retries) would replace the interrupt with a connection-error traceback. A signal blocked when the child
    starts stays blocked in it (the mask survives fork and exec), so it ignores Ctrl-C; it still stops on the
    SIGTERM Prefect sends it when this process exits.
    """
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        SubprocessASGIServer().start()  # the instance Prefect's client reuses (one per process)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
