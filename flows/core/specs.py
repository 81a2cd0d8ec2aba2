"""What a build or an evaluation is asked to do: the specs every front end fills in (:mod:`flows.config`).

A :class:`BuildSpec` (problems :class:`Selection`, sampling :class:`Rounds`) is what :mod:`flows.build.flow` turns into a
bank; an :class:`EvalSpec` (with its shot counts, :data:`ShotCount`) is what :mod:`flows.evaluate.flow` sweeps. Their
keys are :func:`config_key` hashes, so a spec names its bank or eval folder the same from every front end.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import verifiers
from flows.core.errors import UserError

KEEP_POLICIES = ("first", "all-distinct")
MAX = "max"
ShotCount = int | str


class BuildError(UserError, RuntimeError):
    """A build cannot produce a bank (empty selection, model returned nothing, ...)."""


class EvalError(UserError, ValueError):
    """An evaluation cannot run as asked (contaminated bank, bad K, ...)."""


class ShotCountError(ValueError):
    """A shot list that cannot be used (bad word, negative K)."""


def config_key(config: Mapping[str, Any]) -> str:
    """A short stable key for a JSON-serialisable configuration."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Selection:
    """Which problems a build uses."""

    task: str
    split: str = "train"
    limit: int | None = None
    seed: int = 0
    subjects: tuple[str, ...] = ()
    levels: tuple[int, ...] = ()


@dataclass(frozen=True)
class Rounds:
    """How a build samples rationales: the defaults of every front-end (:mod:`flows.config`)."""

    samples: int = 4
    temperature: float = 0.7
    retry_temperature: float = 1.0  # later rounds, for the problems still unsolved
    max_tokens: int = 512
    rounds: int = 1
    keep: str = "first"
    cap: int = 4  # all-distinct: most shots kept per problem


@dataclass(frozen=True)
class BuildSpec:
    """One bank build; its key is :func:`flows.build.sources.key_config` (the mode's source adds its part)."""

    mode: str
    selection: Selection
    model: str = "embedded"
    rounds: Rounds = field(default_factory=Rounds)
    few_shot: bool = True
    iterate_from: str | None = None
    prompt_shots: int = 16
    chunk_size: int = 64
    require_valid_steps: bool = False  # reinforced: drop correct rationales with a wrong arithmetic step


def parse_shots(text: str | Sequence[ShotCount]) -> tuple[ShotCount, ...]:
    """``"0,4,16,64,max"`` (or a list of ints and ``"max"``) -> ``(0, 4, 16, 64, "max")``, sorted, unique."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[ShotCount] = []
    for item in items:
        word = str(item).strip().lower()
        if not word:
            continue
        if word == MAX:
            out.append(MAX)
            continue
        try:
            k = int(word)
        except ValueError:
            raise ShotCountError(f"shot counts are non-negative integers or 'max', got {item!r}") from None
        if k < 0:
            raise ShotCountError(f"shot counts are non-negative integers or 'max', got {k}")
        out.append(k)
    if not out:
        raise ShotCountError("no shot counts given")
    return tuple(sorted(set(out), key=order_key))


def order_key(k: ShotCount) -> tuple[int, int]:
    """Sort key: integers ascending, ``max`` last."""
    return (1, 0) if k == MAX else (0, int(k))


@dataclass(frozen=True)
class EvalSpec:
    task: str
    banks: tuple[str, ...] = ()
    shots: tuple[ShotCount, ...] = (0, 4)  # integers and "max" (the largest K that fits, per bank and seed)
    seeds: int = 1
    limit: int | None = 50
    model: str = "embedded"
    samples: int = 1
    temperature: float = 0.0
    max_tokens: int = 512
    exclude_contaminated: bool = False
    select: tuple[str, ...] = ("random",)  # shot selection strategies (flows.evaluate.shot_selection), one line each
    orders: int = 1  # permutations of each cell's K shots (order 0 is the strategy's own)
    embedder: str = "auto"  # for the similar, diverse and hybrid strategies: auto, minilm or tfidf
    reference: str | None = None  # the bank label paired differences are shown against (None: flows.evaluate.paired's pick)

    def key(self, items: str, task_definition: str) -> str:
        """The eval folder key: the items' content (``items``, a digest of the selected test items, so changed test
        data makes a new folder), the task's prompt definition (``task_definition``, a digest), model, sampling and
        verifier. Banks, shots, seeds, selections and orders are left out: each cell is a file of its own named
        after them in the folder's ``cells/``, so any sweep over the same items reuses every cell another sweep
        finished."""
        config = asdict(self) | {"verifier": verifiers.VERSION, "items": items, "task_definition": task_definition}
        per_cell = ("banks", "shots", "seeds", "select", "orders", "embedder", "reference")
        return config_key({k: v for k, v in config.items() if k not in per_cell})

    def run_key(self) -> str:
        """The key of this sweep's run folder (``runs/<run key>`` in the eval folder): everything, banks by label."""
        config = asdict(self) | {"verifier": verifiers.VERSION, "banks": [Path(b).stem for b in self.banks]}
        if self.reference is None:  # sweeps without a reference keep the run folders they had before it existed
            del config["reference"]
        return config_key(config)
