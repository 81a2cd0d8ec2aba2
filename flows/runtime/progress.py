"""Progress of long work (bank builds, evaluations, ablations): bookkeeping, and two ways to show it.

A flow opens a bar with :func:`tracking` and updates it through :class:`Progress`: ``advance`` when a chunk or
cell is done, ``generated`` when the model returns tokens, ``round_done`` and ``note`` for what is going on.
:class:`Tracker` is the pure bookkeeping (elapsed, ETA, tokens/s; the clock is injected, so tests use a fake
one). What is shown depends on where the output goes:

* stderr is a terminal: a live ``rich`` display (one line per open bar, redrawn in place);
* otherwise (CI, Prefect workers, redirected logs): plain lines on stderr, one per finished chunk or cell and at
  most one every ``MANYSHOT_PROGRESS_INTERVAL`` seconds (default 30) in between;
* ``MANYSHOT_PROGRESS=0`` (the CLI's ``--no-progress``): nothing. ``MANYSHOT_PROGRESS=lines`` forces plain lines.

Only flows open bars. Code that runs where no bar is open (a Dask worker, a task called on its own) reaches a
no-op :class:`Progress`, so progress never changes what the work does. Everything goes to stderr: stdout's last
line stays the bank path or results folder.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator, Sequence, TextIO

from flows.runtime.tracker import Clock, LineRenderer, Renderer, Tracker


class Progress:
    """The open bars of this process (innermost last); every call is about the innermost one. Updates may come
    from several threads (an evaluation running one cell per endpoint): they take turns."""

    def __init__(self, renderer: Renderer | None = None, clock: Clock = time.monotonic):
        self.renderer, self.clock = renderer or Renderer(), clock
        self.bars: list[Tracker] = []
        self.lock = threading.RLock()

    def start(self, total: int, unit: str, label: str, solved_word: str = "solved") -> Tracker:
        tracker = Tracker(label, total, unit, self.clock, solved_word)
        self.bars.append(tracker)
        self.renderer.opened(tracker)
        return tracker

    def _changed(self, finished_unit: bool = False) -> None:
        if self.bars:
            self.renderer.changed(self.bars[-1], finished_unit)

    def advance(self, n: int = 1, *, solved: int = 0, reused: bool = False, skipped: bool = False) -> None:
        with self.lock:
            if self.bars:
                self.bars[-1].advance(n, solved=solved, reused=reused, skipped=skipped)
                self.bars[-1].note = ""
            self._changed(finished_unit=True)

    def generated(self, tokens: int, seconds: float) -> None:
        with self.lock:
            for bar in self.bars:  # an ablation's own bar counts its builds' and evals' tokens too
                bar.generated(tokens, seconds)
            self._changed()

    def round_done(self, text: str) -> None:
        with self.lock:
            if self.bars:
                self.bars[-1].rounds += 1
            self.note(text)

    def note(self, text: str) -> None:
        with self.lock:
            if self.bars:
                self.bars[-1].note = text
            self._changed()

    @contextmanager
    def loading(self) -> Iterator[None]:
        """A model is being loaded meanwhile: the open bars say "loading model" where the ETA is still unknown."""
        for bar in self.bars:
            bar.loading = True
        self._changed()
        try:
            yield
        finally:
            for bar in self.bars:
                bar.loading = False
            self._changed()

    def finish(self) -> None:
        """Close the innermost bar."""
        if self.bars:
            self.renderer.closed(self.bars.pop())

    def close(self) -> None:
        while self.bars:
            self.finish()
        close = getattr(self.renderer, "close", None)
        if close:
            close()


_active: list[Progress] = []
_IDLE = Progress()


def current() -> Progress:
    """The progress of the flow running in this process, or a no-op one (Dask workers, tasks called alone)."""
    return _active[-1] if _active else _IDLE


def make_renderer(stream: TextIO | None = None) -> Renderer:
    """The renderer ``MANYSHOT_PROGRESS`` and the output ask for: rich on a terminal, plain lines, or none."""
    mode = os.environ.get("MANYSHOT_PROGRESS", "auto").strip().lower()
    if mode in ("0", "off", "no", "false", "none"):
        return Renderer()
    if mode not in ("auto", "1", "on", "lines", "rich"):
        raise ValueError(f"MANYSHOT_PROGRESS={mode!r}: expected 0, lines, rich or auto")
    stream = stream or sys.stderr
    if mode == "rich" or (mode != "lines" and stream.isatty()):
        from flows.runtime.progress_rich import RichRenderer

        return RichRenderer()
    return LineRenderer(stream, interval=float(os.environ.get("MANYSHOT_PROGRESS_INTERVAL", "30")))


@contextmanager
def tracking(total: int, unit: str, label: str, solved_word: str = "solved") -> Iterator[Progress]:
    """Open a bar for the duration of a flow: under the flow that is already showing progress (an ablation's
    builds and evals), else in a display of its own, closed on the way out."""
    owner = not _active
    if owner:
        _active.append(Progress(make_renderer()))
    progress = _active[-1]
    progress.start(total, unit, label, solved_word)
    try:
        yield progress
    finally:
        progress.finish()
        if owner:
            _active.pop().close()


class Metered:
    """A generator that tells the current progress how many completion tokens each batch returned, and how
    long it took. Everything else is the wrapped generator's."""

    def __init__(self, inner: Any, clock: Clock = time.monotonic):
        self.inner, self.clock = inner, clock

    def generate(self, prompts: Sequence, sampling: Any) -> list:
        started = self.clock()
        completions = self.inner.generate(prompts, sampling)
        current().generated(sum(sum(c.completion_tokens) for c in completions), self.clock() - started)
        return completions

    def __getattr__(self, name: str) -> Any:
        if name == "inner" or name.startswith("__"):  # no recursion while unpickling; no borrowed protocols
            raise AttributeError(name)
        return getattr(self.inner, name)


def metered(generator: Any) -> Any:
    """``generator`` wrapped in :class:`Metered` (once; None stays None)."""
    if generator is None or isinstance(generator, Metered):
        return generator
    return Metered(generator)
