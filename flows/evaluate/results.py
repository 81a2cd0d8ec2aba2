"""What one evaluation sweep returns: its run folder, the summary rows, and, as data, what the summary's text
says besides the tables (skipped cells, test-split overlaps).

``evaluate`` returns an :class:`EvalResult` and writes it into the run folder: ``summary.csv`` (the rows),
``summary.json`` (the rest) and ``summary.md`` (the text people read). ``ablate`` and ``manyshot report`` use
the result or ``summary.json`` instead of parsing the text; folders written before ``summary.json`` existed are
still read from their ``summary.md`` lines (:func:`parse_summary_lines`).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from flows.core.cellkey import CellKey
from flows.evaluate.metrics import markdown_table, order_spread_table, prompt_tokens_table
from flows.evaluate.paired import markdown as paired_markdown

_SKIP = re.compile(r"^skipped (?P<cell>.+?-k(?:\d+|max)): (?P<why>.*)$")
_OVERLAP = re.compile(r"^overlap with the test split: (?P<bank>.+): (?P<n>\d+) shots excluded$")


@dataclass(frozen=True)
class Skipped:
    """A cell the sweep did not run, and why (it does not fit the context, the bank is too small, ...)."""

    bank: str
    seed: int
    k: str  # the K label: "16" or "max"
    reason: str
    selection: str = ""  # the cell name's selection part, e.g. "-similar-minilm-o1"; "" for random order 0

    @property
    def cell(self) -> str:
        return f"{self.bank}-s{self.seed}{self.selection}-k{self.k}"  # CellKey.name, from the stored selection part

    @property
    def line(self) -> str:
        return f"skipped {self.cell}: {self.reason}"


def overlap_note(bank: str, n: int) -> str:
    return f"overlap with the test split: {bank}: {n} shots excluded"


@dataclass(frozen=True)
class EvalResult:
    """One sweep's outcome. ``summary`` has a row per (bank, seed, selection, K, metric); ``orders`` the accuracy
    spread over shot orders when the sweep had more than one; ``paired`` the paired comparisons of its cells
    (:func:`flows.paired.paired_differences`), shown against ``reference`` (a bank label; None: the default)."""

    task: str
    model: str
    folder: Path
    summary: pd.DataFrame
    skipped: tuple[Skipped, ...] = ()
    overlaps: dict[str, int] = field(default_factory=dict)  # bank label -> shots left out as test-split overlaps
    orders: pd.DataFrame | None = None
    paired: pd.DataFrame | None = None
    reference: str | None = None

    @property
    def title(self) -> str:
        return f"{self.task}: accuracy vs shots ({self.model})"

    @property
    def notes(self) -> list[str]:
        return [overlap_note(bank, n) for bank, n in self.overlaps.items() if n]

    def body(self) -> str:
        """The summary's markdown without its title: tables, then overlap and skip lines."""
        orders = (["accuracy spread over shot orders (strict):", order_spread_table(self.orders)]
                  if self.orders is not None else [])
        paired = (["### Paired differences", paired_markdown(self.paired, self.reference)]
                  if self.paired is not None else [])
        return "\n\n".join(["strict:", markdown_table(self.summary, "strict"),
                            "flexible:", markdown_table(self.summary, "flexible"),
                            "prompt tokens per K (mean, max over items):", prompt_tokens_table(self.summary)]
                           + orders + paired + self.notes + [s.line for s in self.skipped])

    def markdown(self) -> str:
        return f"## {self.title}\n\n{self.body()}"

    def write(self, folder: Path) -> None:
        """``summary.csv``, ``summary.json``, ``summary.md`` and ``paired.csv`` into ``folder`` (the run folder being
        made)."""
        self.summary.to_csv(folder / "summary.csv", index=False)
        if self.paired is not None:
            self.paired.to_csv(folder / "paired.csv", index=False)
        meta = {"task": self.task, "model": self.model, "skipped": [asdict(s) for s in self.skipped],
                "overlaps": self.overlaps, "reference": self.reference}
        (folder / "summary.json").write_text(json.dumps(meta, indent=1) + "\n")
        (folder / "summary.md").write_text(self.markdown() + "\n")


def skipped_and_notes(folder: Path) -> tuple[list[Skipped], list[str]]:
    """The skipped cells and overlap notes of a run folder: from ``summary.json``, or from older folders'
    ``summary.md`` lines."""
    meta_path = folder / "summary.json"
    if meta_path.exists():
        try:
            return from_meta(json.loads(meta_path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{meta_path} is not a summary.json written by manyshot: {exc}") from None
    text = (folder / "summary.md").read_text() if (folder / "summary.md").exists() else ""
    return parse_summary_lines(text)


def from_meta(meta: dict) -> tuple[list[Skipped], list[str]]:
    """The skipped cells and overlap notes of one eval's entry in a ``summary.json`` (run or ablation folder)."""
    return ([Skipped(**s) for s in meta["skipped"]],
            [overlap_note(bank, n) for bank, n in meta["overlaps"].items() if n])


def _cell_key(name: str) -> CellKey | None:
    try:
        return CellKey.parse(name)
    except ValueError:
        return None


def parse_summary_lines(text: str) -> tuple[list[Skipped], list[str]]:
    """Skipped cells and test-split overlap notes from the lines of a summary.md (folders without summary.json)."""
    skipped, notes = [], []
    for line in text.splitlines():
        match = _SKIP.match(line.strip())
        key = _cell_key(match["cell"]) if match else None
        if key is not None:
            skipped.append(Skipped(key.bank, key.seed, str(key.k), match["why"], key.selection))
        elif _OVERLAP.match(line.strip()):
            notes.append(line.strip())
    return skipped, notes
