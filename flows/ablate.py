"""``manyshot ablate SPEC.toml``: build or reuse banks, then evaluate every bank on every eval task.

A bank whose task differs from the eval task is a transfer cell (e.g. MATH shots on GSM8K).
Banks are reused by their configuration key and eval cells by their checkpoints, so a rerun only
does what is missing. ``endpoints = [...]`` in the spec (or ``--endpoint``) uses OpenAI-compatible
servers instead of an in-process engine, for the builds and the evals. ``reference = "NAME"`` (top level or per
eval; ``--reference`` overrides both) names the bank, by its spec name, that paired differences are shown against.
"""
from __future__ import annotations

import json
import shutil
import tomllib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow

from flows.build.flow import build_bank
from flows.core.specs import BuildError, BuildSpec
from flows.config import BUILD_KEYS, build_spec, eval_spec
from flows.evaluate.flow import evaluate
from flows.report.html_report import write_report
from flows.runtime.interrupt import CellsInterrupted
from flows.runtime.progress import current, tracking
from flows.evaluate.results import EvalResult
from flows.report.artifacts import publish_report_artifacts
from flows.core.taskfile import resolve
from generators import load_generator

BANK_KEYS = (BUILD_KEYS - {"model"}) | {"name"}
EVAL_ENTRY_KEYS = {"task", "banks", "limit", "shots", "seeds", "max_tokens", "select", "orders", "embedder",
                   "reference"}


def bank_spec(entry: dict[str, Any], model: str, built: dict[str, str] | None = None) -> BuildSpec:
    """The build of a ``[[banks]]`` entry. ``iterate_from`` names an earlier bank of the spec; ``built`` maps the
    names built so far to paths."""
    where = f"bank {entry.get('name', entry)}"
    fields = {k: v for k, v in entry.items() if k != "name"}
    if "model" in fields:
        raise BuildError(f"{where}: set the model once, at the top of the spec")
    if "iterate_from" in fields:
        if fields["iterate_from"] not in (built or {}):
            raise BuildError(f"{where}: iterate_from {fields['iterate_from']!r} names no bank built before it")
        fields["iterate_from"] = built[fields["iterate_from"]]
    return build_spec(fields | {"model": model}, where)


def load_spec(path: str | Path) -> dict[str, Any]:
    try:
        spec = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BuildError(f"cannot read ablation spec {path}: {exc}") from exc
    names = [b.get("name") for b in spec.get("banks", [])]
    if not spec.get("evals") or len(set(names)) != len(names) or None in names:
        raise BuildError(f"{path}: needs [[evals]] and [[banks]] entries with unique names")
    for i, b in enumerate(spec["banks"]):
        if "iterate_from" in b and b["iterate_from"] not in names[:i]:
            raise BuildError(f"{path}: bank {b['name']}: iterate_from {b['iterate_from']!r} is not the name of an "
                             f"earlier bank ({names[:i]})")
    for e in spec["evals"]:
        if set(e) - EVAL_ENTRY_KEYS or set(e.get("banks", names)) - set(names):
            raise BuildError(f"{path}: eval {e.get('task')}: unknown keys or bank names in {e}")
    for entry in (*spec["banks"], *spec["evals"]):  # task files are relative to the spec
        if isinstance(entry.get("task"), str):
            entry["task"] = resolve(entry["task"], Path(path).parent,
                                    allow_unparsed=bool(spec.get("allow_unparsed", False)))
    return spec


@flow(name="ablate", validate_parameters=False, log_prints=True)
def run_ablation(config: str, data_dir: str | None = None, out: str | None = None,
                 endpoints: tuple[str, ...] = (), reference: str | None = None) -> str:
    spec = load_spec(config)
    if reference is not None:
        spec = spec | {"evals": [e | {"reference": reference} for e in spec["evals"]]}
    root = Path(out or spec.get("out", "runs"))
    model = spec.get("model", "embedded")
    endpoints = endpoints or tuple(spec.get("endpoints", ()))
    generator = load_generator(model, endpoints=endpoints) if endpoints else None
    with tracking(len(spec["banks"]) + len(spec["evals"]), "banks and evals", f"ablation {Path(config).stem}",
                  solved_word=""):
        return _run_ablation(spec, config, data_dir, root, model, generator)


def _run_ablation(spec: dict[str, Any], config: str, data_dir: str | None, root: Path, model: str,
                  generator: Any) -> str:
    paths = {}
    for b in spec["banks"]:
        paths[b["name"]] = build_bank(bank_spec(b, model, paths), data_dir=data_dir, out=str(root / "banks"),
                                      generator=generator)
        current().advance()
    target = root / f"ablation-{Path(config).stem}"
    target.mkdir(parents=True, exist_ok=True)
    results = []
    for i, e in enumerate(spec["evals"], start=1):
        evaluation = eval_spec(eval_entry(spec, e, paths, model), f"{config}: eval {i}")
        try:
            results.append(evaluate(evaluation, data_dir=data_dir, out=str(root / "evals"), generator=generator))
        except CellsInterrupted as exc:  # name the eval: the banks and the evals before it are finished
            raise CellsInterrupted(exc.progress, exc.signum,
                                   f"ablation {config}, eval {i} of {len(spec['evals'])} on {e['task']}: ") from None
        current().advance()
    write_summary(target, config, paths, results)
    report = write_report(target, data_dir=data_dir)
    publish_report_artifacts(target, report)
    print((target / "summary.md").read_text())
    print(f"report: {report}")
    return str(target)


def eval_entry(spec: dict[str, Any], entry: dict[str, Any], paths: dict[str, str], model: str) -> dict[str, Any]:
    """An ``[[evals]]`` entry with the spec's defaults and its banks' paths (``paths``: bank name -> path)."""
    chosen = tuple(paths[n] for n in entry.get("banks", list(paths)))
    defaults = {k: spec[k] for k in EVAL_ENTRY_KEYS - {"task", "banks"} if k in spec}
    out = defaults | entry | {"banks": chosen, "model": model}
    if out.get("reference") in paths:  # a spec name; the eval knows banks by their file's label
        out["reference"] = Path(paths[out["reference"]]).stem
    return out


def write_summary(target: Path, config: str, paths: dict[str, str], results: list[EvalResult]) -> None:
    """The ablation folder's summary.csv and paired.csv (every eval's rows, with ``eval_task``), summary.json (bank
    paths and, per eval, its run folder, skipped cells and overlaps), summary.md and one plot per eval."""
    pd.concat([r.summary.assign(eval_task=r.task) for r in results]).to_csv(target / "summary.csv", index=False)
    paired = [r.paired.assign(eval_task=r.task) for r in results if r.paired is not None]
    if paired:
        pd.concat(paired).to_csv(target / "paired.csv", index=False)
    evals = [{"task": r.task, "folder": str(r.folder), "skipped": [asdict(s) for s in r.skipped],
              "overlaps": r.overlaps, "reference": r.reference} for r in results]
    meta = {"title": f"ablation {config}", "banks": paths, "evals": evals}
    (target / "summary.json").write_text(json.dumps(meta, indent=1) + "\n")
    sections = []
    for r in results:
        shutil.copyfile(r.folder / "accuracy.png", target / f"accuracy-{r.task}.png")
        sections.append(f"## eval on {r.task}\n\nresults: {r.folder}\n\n{r.body()}\n\n"
                        f"![{r.task}](accuracy-{r.task}.png)")
    names = "\n".join(f"- {n}: {p}" for n, p in paths.items())
    (target / "summary.md").write_text(f"# {meta['title']}\n\nbanks:\n{names}\n\n" + "\n\n".join(sections) + "\n")
