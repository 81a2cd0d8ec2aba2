"""The name of an eval cell: one record owns ``<bank>-s<seed><selection>-k<K>`` and its parsing.

A cell is one (bank, seed, shot selection, order, K) of a sweep. Its name is its file name in an eval folder's
``cells/`` (``.parquet`` for the rows, ``.json`` for a ``max`` resolution), the key in skip lines and reports, and
what the analyses' checkpoints are called. The default selection (random, order 0) adds nothing to the name, so
cells written before selections existed keep theirs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

NO_BANK = "none"  # the bank label of the zero-shot cell
_NAME = re.compile(r"^(?P<bank>.+?)-s(?P<seed>\d+)(?P<selection>-.+?)?-k(?P<k>\d+|max)$")
_ORDER = re.compile(r"-o(\d+)$")


@dataclass(frozen=True)
class CellKey:
    bank: str
    seed: int
    k: int | str  # K, or the label "max" (a resolution's name, before its K is known)
    select: str = "random"  # the selector's label, e.g. "similar/minilm"
    order: int = 0

    @property
    def selection(self) -> str:
        """The name's selection part: empty for the default (random, order 0)."""
        strategy = "" if self.select == "random" else "-" + self.select.replace("/", "-")
        return strategy + (f"-o{self.order}" if self.order else "")

    @property
    def name(self) -> str:
        return f"{self.bank}-s{self.seed}{self.selection}-k{self.k}"

    def path(self, folder: Path, suffix: str = ".parquet") -> Path:
        return Path(folder) / f"{self.name}{suffix}"

    @classmethod
    def parse(cls, name: str) -> CellKey:
        """The key a name (or file name without its suffix) spells; ValueError for anything else."""
        match = _NAME.match(name)
        if match is None:
            raise ValueError(f"not a cell name: {name!r}")
        selection, order = match["selection"] or "", 0
        if (found := _ORDER.search(selection)) is not None:
            selection, order = selection[:found.start()], int(found[1])
        select = selection[1:].replace("-", "/", 1) if selection else "random"
        k = match["k"] if match["k"] == "max" else int(match["k"])
        return cls(match["bank"], int(match["seed"]), k, select, order)
