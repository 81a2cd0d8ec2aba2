"""The live terminal display of :mod:`flows.runtime.progress`: a ``rich`` progress display on stderr, one line per open
bar, redrawn four times a second (so elapsed and ETA tick between updates).

Log lines keep appearing above the display: rich's redirection catches writes to ``sys.stderr`` (and to
``sys.stdout`` when it is the terminal too; when stdout is redirected it is left alone, so the printed bank
path or results folder still lands there), and Prefect's console log handlers, which hold their own rich
console on the real stderr, are pointed at the redirected stream while the display is up.
"""
from __future__ import annotations

import logging
import sys

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

from flows.runtime.tracker import Renderer, Tracker


class _Fields(ProgressColumn):
    """The tracker's fields (chunks/cells, rounds, solved, tok/s, elapsed, ETA, note), read at each redraw."""

    def render(self, task: Task) -> Text:
        tracker: Tracker = task.fields["tracker"]
        return Text(" | ".join(tracker.fields()))


def _log_consoles() -> list:
    """The rich consoles of the logging handlers that write to the terminal (Prefect's console handler)."""
    handlers = {h for name in (None, "prefect") for h in logging.getLogger(name).handlers}
    handlers |= {h for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)
                 for h in logger.handlers}
    return [h.console for h in handlers if isinstance(getattr(h, "console", None), Console)]


class RichRenderer(Renderer):
    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.display = Progress(TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), _Fields(),
                                console=self.console, redirect_stdout=sys.stdout.isatty(), redirect_stderr=True,
                                refresh_per_second=4)
        self.tasks: dict[int, int] = {}  # id(tracker) -> rich task id
        self.saved_files: list[tuple[Console, object]] = []

    def opened(self, tracker: Tracker) -> None:
        if not self.tasks:
            self.display.start()
            self.saved_files = [(c, c.file) for c in _log_consoles()]
            for console, _ in self.saved_files:
                console.file = sys.stderr  # rich's proxy now: log lines are printed above the display
        self.tasks[id(tracker)] = self.display.add_task(tracker.label, total=tracker.total, tracker=tracker)

    def changed(self, tracker: Tracker, finished_unit: bool) -> None:
        task = self.tasks.get(id(tracker))
        if task is not None:
            self.display.update(task, completed=tracker.done)

    def closed(self, tracker: Tracker) -> None:
        task = self.tasks.pop(id(tracker), None)
        if task is None:
            return
        self.display.update(task, completed=tracker.done)
        if self.tasks:  # a build or eval inside an ablation: its last state goes above the display
            self.display.remove_task(task)
            self.console.print(tracker.line())
        else:
            self.display.refresh()
            self.close()

    def close(self) -> None:
        for console, file in self.saved_files:
            console.file = file
        self.saved_files = []
        if self.display.live.is_started:
            self.display.stop()
