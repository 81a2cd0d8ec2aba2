"""The live terminal display of :mod:`flows.runtime.progress`: a ``rich`` progress display on stderr, one line per open
bar, redrawn four times a second (so elapsed and ETA tick between updates).

Log lines keep appearing above the display: rich's redirection catches writes to ``sys.stderr`` (and to
``sys.stdout`` when it is the terminal too; when stdout is redirected it is left alone, so the printed bank
path or results folder still lands there), and the log handlers that hold the real terminal streams
(Prefect's console handler with its own rich console, vLLM's and Prefect's plain stream handlers) are pointed at
the redirected stream while the display is up: a log line clears the display, prints, and the display is
redrawn below it.
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


def _log_handlers() -> set[logging.Handler]:
    handlers = set(logging.getLogger().handlers)
    return handlers | {h for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)
                       for h in logger.handlers}


def _log_consoles() -> list:
    """The rich consoles of the logging handlers that write to the terminal (Prefect's console handler)."""
    return [h.console for h in _log_handlers() if isinstance(getattr(h, "console", None), Console)]


def _terminal_streams() -> tuple:
    """The real stderr, and stdout when it is the terminal (else it is left alone, as the display leaves it)."""
    return (sys.__stderr__, sys.__stdout__) if sys.__stdout__ and sys.__stdout__.isatty() else (sys.__stderr__,)


def _stream_handlers() -> list[logging.StreamHandler]:
    """Plain stream handlers on the terminal (vLLM's, Prefect's debug handler), which write past rich."""
    return [h for h in _log_handlers() if isinstance(h, logging.StreamHandler) and not hasattr(h, "console")
            and h.stream in _terminal_streams()]


class _Above:
    """A file that writes through rich's redirecting proxy (which prints whole lines above the display). A rich
    console unwraps a proxy given as its file (``rich_proxied_file``) and would write past the display: this
    wrapper does not let it."""

    def __init__(self, proxy, terminal) -> None:
        self.proxy, self.terminal = proxy, terminal

    def write(self, text: str) -> int:
        return self.proxy.write(text)

    def flush(self) -> None:
        self.proxy.flush()

    def isatty(self) -> bool:
        return self.terminal.isatty()

    @property
    def encoding(self) -> str:
        return getattr(self.terminal, "encoding", None) or "utf-8"


class RichRenderer(Renderer):
    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.display = Progress(TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), _Fields(),
                                console=self.console, redirect_stdout=sys.stdout.isatty(), redirect_stderr=True,
                                refresh_per_second=4)
        self.tasks: dict[int, int] = {}  # id(tracker) -> rich task id
        self.saved_files: list[tuple[Console, object]] = []
        self.saved_streams: list[tuple[logging.StreamHandler, object]] = []

    def opened(self, tracker: Tracker) -> None:
        if not self.tasks:
            self.display.start()
            self.saved_files = [(c, c.file) for c in _log_consoles()]
            for console, file in self.saved_files:
                console.file = _Above(sys.stderr, file)  # log lines are printed above the display
            self.saved_streams = [(h, h.setStream(sys.stderr)) for h in _stream_handlers()]
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
        for handler, stream in self.saved_streams:
            handler.setStream(stream)
        self.saved_streams = []
        if self.display.live.is_started:
            self.display.stop()
