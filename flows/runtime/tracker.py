"""One progress bar's bookkeeping (:class:`Tracker`) and the two displays that need nothing but it: none
(:class:`Renderer`) and plain lines (:class:`LineRenderer`). The live terminal display is
:mod:`flows.runtime.progress_rich`; which one a flow gets is :func:`flows.runtime.progress.make_renderer`'s choice.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable, TextIO

Clock = Callable[[], float]


def clock_text(seconds: float | None) -> str:
    """``0:01:05``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


@dataclass
class Tracker:
    """One bar's counts. ``reused`` units (checkpoints found on disk) count as done but not towards the rate,
    so the ETA is the time the units made in this run took, times the units left."""

    label: str
    total: int
    unit: str
    clock: Clock = time.monotonic
    solved_word: str = "solved"
    started: float = field(init=False)
    done: int = 0
    reused: int = 0
    skipped: int = 0
    solved: int = 0
    rounds: int = 0
    tokens: int = 0
    generation_seconds: float = 0.0
    note: str = ""
    loading: bool = False  # a model is being loaded: the ETA says so instead of "?"

    def __post_init__(self) -> None:
        self.started = self.clock()

    def advance(self, n: int = 1, *, solved: int = 0, reused: bool = False, skipped: bool = False) -> None:
        self.done += n
        self.solved += solved
        self.reused += n if reused else 0
        self.skipped += n if skipped else 0

    def generated(self, tokens: int, seconds: float) -> None:
        """The model returned ``tokens`` completion tokens in a call of ``seconds``."""
        self.tokens += tokens
        self.generation_seconds += seconds

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    @property
    def tokens_per_second(self) -> float | None:
        """Completion tokens per second of generation (time inside model calls only)."""
        return self.tokens / self.generation_seconds if self.generation_seconds > 0 else None

    @property
    def eta(self) -> float | None:
        """Seconds left at this run's pace; 0 when all is done, None before the first unit made here."""
        left = self.total - self.done
        if left <= 0:
            return 0.0
        made = self.done - self.reused - self.skipped
        return self.elapsed / made * left if made > 0 else None

    def fields(self) -> list[str]:
        """The parts of a progress line, after the label."""
        count = f"{self.unit} {self.done}/{self.total}"
        extra = [f"{n} {what}" for n, what in ((self.reused, "reused"), (self.skipped, "skipped")) if n]
        parts = [count + (f" ({', '.join(extra)})" if extra else "")]
        if self.rounds:
            parts.append(f"rounds {self.rounds}")
        rate = self.tokens_per_second
        parts += [f"{self.solved_word} {self.solved}"] if self.solved_word else []
        parts += [f"{rate:.1f} tok/s" if rate is not None else "- tok/s",
                  f"elapsed {clock_text(self.elapsed)}",
                  "loading model" if self.loading and self.eta is None else f"ETA {clock_text(self.eta)}"]
        return parts + ([self.note] if self.note else [])

    def line(self) -> str:
        return f"progress {self.label}: " + " | ".join(self.fields())


class Renderer:
    """Shows the open bars; the base class shows nothing."""

    def opened(self, tracker: Tracker) -> None: ...

    def changed(self, tracker: Tracker, finished_unit: bool) -> None: ...

    def closed(self, tracker: Tracker) -> None: ...


class LineRenderer(Renderer):
    """Plain lines: one per finished unit, one when a bar closes, else at most one per ``interval`` seconds."""

    def __init__(self, stream: TextIO | None = None, interval: float = 30.0, clock: Clock = time.monotonic):
        self.stream, self.interval, self.clock = stream, interval, clock
        self.last = clock()

    def _write(self, tracker: Tracker) -> None:
        stream = self.stream or sys.stderr  # written, not printed: flows with log_prints would log a print
        stream.write(tracker.line() + "\n")
        stream.flush()
        self.last = self.clock()

    def changed(self, tracker: Tracker, finished_unit: bool) -> None:
        if finished_unit or self.clock() - self.last >= self.interval:
            self._write(tracker)

    def closed(self, tracker: Tracker) -> None:
        self._write(tracker)
