"""Build and eval configurations from plain mappings: one reader for every front-end.

The CLI (its parsed flags), ablation specs (``[[banks]]`` and ``[[evals]]`` entries) and pipeline configs (bank and
eval jobs) all turn their keys into a :class:`~flows.core.specs.BuildSpec` with :func:`build_spec` and an
:class:`~flows.core.specs.EvalSpec` with :func:`eval_spec`. A key that is absent takes the dataclasses' default, so
every default exists once: in :class:`~flows.core.specs.Selection`, :class:`~flows.core.specs.Rounds`,
:class:`~flows.core.specs.BuildSpec` and :class:`~flows.core.specs.EvalSpec`. Generators are chosen by
:class:`generators.GeneratorConfig`.
"""
from __future__ import annotations

from typing import Any, Mapping

from flows.core.specs import BuildError, BuildSpec, EvalSpec, Rounds, Selection
from flows.evaluate.shot_selection import parse_select

SELECTION_KEYS = {"task": "task", "split": "split", "limit": "limit", "seed": "seed", "subjects": "subjects",
                  "levels": "levels"}
ROUNDS_KEYS = {"samples": "samples", "temperature": "temperature", "retry_temperature": "retry_temperature",
               "max_tokens": "max_tokens", "rounds": "rounds", "keep": "keep", "max_per_problem": "cap"}
SPEC_KEYS = {"mode": "mode", "model": "model", "iterate_from": "iterate_from", "prompt_shots": "prompt_shots",
             "chunk_size": "chunk_size", "require_valid_steps": "require_valid_steps"}
BUILD_KEYS = set(SELECTION_KEYS) | set(ROUNDS_KEYS) | set(SPEC_KEYS) | {"zero_shot"}
EVAL_KEYS = {"task", "banks", "shots", "seeds", "limit", "model", "samples", "temperature", "max_tokens",
             "exclude_contaminated", "select", "orders", "embedder", "reference"}
TUPLES = {"subjects", "levels", "banks", "shots"}


class ConfigError(BuildError):
    """A configuration mapping is invalid; the message names where it came from and the key."""


def _pick(entry: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    return {field: tuple(entry[key]) if key in TUPLES else entry[key] for key, field in names.items() if key in entry}


def _check(entry: Mapping[str, Any], allowed: set[str], required: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    missing = [k for k in required if k not in entry]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {missing}")


def build_spec(entry: Mapping[str, Any], where: str = "bank") -> BuildSpec:
    """The build of ``entry`` (keys: :data:`BUILD_KEYS`; ``mode`` and ``task`` required)."""
    _check(entry, BUILD_KEYS, ("mode", "task"), where)
    return BuildSpec(selection=Selection(**_pick(entry, SELECTION_KEYS)), rounds=Rounds(**_pick(entry, ROUNDS_KEYS)),
                     few_shot=not entry.get("zero_shot", False), **_pick(entry, SPEC_KEYS))


def eval_spec(entry: Mapping[str, Any], where: str = "eval") -> EvalSpec:
    """The evaluation of ``entry`` (keys: :data:`EVAL_KEYS`; ``task`` required). Without a ``temperature``, one
    sample per question decodes greedily and several sample at 0.7 (majority vote)."""
    _check(entry, EVAL_KEYS, ("task",), where)
    fields = _pick(entry, {key: key for key in EVAL_KEYS})
    if "select" in fields:
        fields["select"] = parse_select(entry["select"])
    fields.setdefault("temperature", 0.7 if fields.get("samples", 1) > 1 else 0.0)
    return EvalSpec(**fields)
