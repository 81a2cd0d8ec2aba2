"""The many-shot evaluation Prefect flow: banks x seeds x K, one batched model call per cell.

Cells run seed by seed with K ascending, so each prompt extends a prefix the engine has just
cached. Finished cells are checkpointed and reused by reruns of the same configuration.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

import verifiers
from flows import bank as banks
from flows.build import retry_model_errors
from flows.data import Problem, load_problems, select
from flows.manyshot import BankView, contaminated, many_shot_prompt, shot_order
from flows.metrics import markdown_table, plot, summarize
from flows.metrics import prompt_tokens_table
from flows.schema import RESULT_SCHEMA, to_table
from flows.shotcounts import MAX, Resolution, ShotCount, ShotCountError, parse_shots, resolve_max
from generators import Generator, Sampling, load_generator, prompt_hash

DEFAULT_ROOT = Path("runs") / "evals"


class EvalError(ValueError):
    """An evaluation cannot run as asked (contaminated bank, bad K, ...)."""


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

    def key(self) -> str:
        """The results folder key: the items, model, sampling and verifier. Banks, shots and seeds are
        left out: each (bank, seed, K) cell is a file of its own named after them, so any sweep over
        the same items reuses every cell another sweep finished."""
        config = asdict(self) | {"verifier": verifiers.VERSION}
        return banks.config_key({k: v for k, v in config.items() if k not in ("banks", "shots", "seeds")})


@dataclass(frozen=True)
class Cell:
    view: BankView | None
    seed: int
    k: ShotCount
    k_label: str = ""  # what the sweep asked for: "16", or "max" for a resolved max cell

    @property
    def label(self) -> str:
        return self.view.label if self.view else "none"

    @property
    def key(self) -> str:
        return f"{self.label}-s{self.seed}-k{self.k}"

    @property
    def shown_k(self) -> str:
        return self.k_label or str(self.k)


def bank_views(paths: tuple[str, ...]) -> list[BankView]:
    views = []
    for path in paths:
        table, _ = banks.read_bank(path)
        views.append(BankView.from_rows(Path(path).stem, table.to_pylist()))
    return views


def cells(spec: EvalSpec, views: list[BankView]) -> list[Cell]:
    """Seed, then bank, then K ascending (prefix order, ``max`` last); K=0 once, independent of banks and seeds.

    Seed-major order means a stopped sweep has every bank covered for its first seeds.
    """
    shots = parse_shots(spec.shots)
    out = [Cell(None, 0, 0)] if 0 in shots else []
    for seed in range(spec.seeds):
        out += [Cell(view, seed, k) for view in views for k in shots if k != 0]
    return out


def resolve_cell(spec: EvalSpec, cell: Cell, shots: list, items: list[Problem], folder: Path,
                 generator: Generator | None) -> tuple[Resolution, Generator | None]:
    """The K of a ``max`` cell, read from its resolution file or computed (loading the model) and stored."""
    path = folder / f"{cell.label}-s{cell.seed}-kmax.json"
    if path.exists():
        saved = json.loads(path.read_text())
        return Resolution(saved["k"], saved["prompt_tokens"], saved["reason"]), generator
    generator = generator or load_generator(spec.model)
    resolution = resolve_max(generator, spec.task, shots, items, spec.max_tokens)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(resolution) | {"max_model_len": generator.max_model_len}))
    tmp.replace(path)
    return resolution, generator


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[5, 20, 60], retry_condition_fn=retry_model_errors)
def run_cell(spec: EvalSpec, generator: Generator, cell: Cell, items: list[Problem], shots: list,
             run_id: str) -> tuple[pa.Table | None, str | None]:
    """Generate and score one (bank, seed, K) cell. Returns (rows, None) or (None, skip reason)."""
    prompts = [many_shot_prompt(spec.task, shots[:cell.k], p.question) for p in items]
    tokens = [generator.count_tokens(p) for p in prompts]
    budget = generator.max_model_len - spec.max_tokens
    if max(tokens) > budget:
        return None, (f"K={cell.k} needs up to {max(tokens)} prompt tokens; max_model_len {generator.max_model_len} "
                      f"leaves {budget} after {spec.max_tokens} generation tokens")
    sampling = Sampling(n=spec.samples, temperature=spec.temperature, max_tokens=spec.max_tokens, seed=cell.seed)
    completions = generator.generate(prompts, sampling)
    responses = [(p, prompt, n, i, t) for p, prompt, n, c in zip(items, prompts, tokens, completions)
                 for i, t in enumerate(c.texts)]
    pairs = [(p.answer, t) for p, _, _, _, t in responses]
    strict = verifiers.verify_many(pairs, task=spec.task, mode="strict")
    flexible = verifiers.verify_many(pairs, task=spec.task, mode="flexible")
    now = datetime.now(timezone.utc)
    source = cell.view.source if cell.view else "zero-shot"
    transfer = bool(cell.view and cell.view.task != spec.task)
    rows = []
    for (p, prompt, n, sample, text), vs, vf in zip(responses, strict, flexible):
        rows.append({"run_id": run_id, "task": spec.task, "bank": cell.label, "source": source,
                     "transfer": transfer, "k": cell.k, "seed": cell.seed, "item_id": p.id,
                     "sample": sample, "prompt_hash": prompt_hash(prompt), "prompt_tokens": n,
                     "response": text, "gold": p.answer, "extracted_strict": vs.extracted,
                     "extracted_flexible": vf.extracted, "correct_strict": vs.correct,
                     "correct_flexible": vf.correct, "method": vs.method, "error": vs.error,
                     "model": generator.model_id, "created_at": now})
    return to_table(rows, RESULT_SCHEMA), None


def _check_leakage(spec: EvalSpec, views: list[BankView], test: list[Problem]) -> dict[str, set[str]]:
    leaks = {v.label: contaminated(v, test) for v in views}
    dirty = {label: ids for label, ids in leaks.items() if ids}
    if dirty and not spec.exclude_contaminated:
        detail = "; ".join(f"{label}: {len(ids)} shots" for label, ids in dirty.items())
        raise EvalError(f"banks contain {spec.task} test problems ({detail}); "
                        "pass --exclude-contaminated to drop those shots")
    return leaks


@flow(name="evaluate", validate_parameters=False, log_prints=True)
def evaluate(spec: EvalSpec, data_dir: str | None = None, out: str | None = None,
             generator: Generator | None = None) -> str:
    """Run (or resume) the evaluation; return the results folder."""
    logger = get_run_logger()
    try:
        shot_counts = parse_shots(spec.shots)
    except ShotCountError as exc:
        raise EvalError(f"--shots: {exc}") from None
    if any(k != 0 for k in shot_counts) and not spec.banks:
        raise EvalError("K > 0 needs at least one --bank")
    folder = Path(out or DEFAULT_ROOT) / f"{spec.task}-{spec.key()}"
    parts = folder / "cells"
    parts.mkdir(parents=True, exist_ok=True)
    test = load_problems(spec.task, "test", data_dir)
    items = select(test, limit=spec.limit, seed=0)
    views = bank_views(spec.banks)
    leaks = _check_leakage(spec, views, test)
    run_id, skipped, done = str(uuid.uuid4()), {}, []
    todo = cells(spec, views)
    for n, cell in enumerate(todo, start=1):
        shots = shot_order(cell.view, cell.seed, leaks[cell.label]) if cell.view else []
        if cell.k == MAX:
            resolution, generator = resolve_cell(spec, cell, shots, items, parts, generator)
            print(f"K=max for {cell.label} seed {cell.seed}: K={resolution.k} ({resolution.reason})")
            if resolution.k == 0:
                skipped[f"{cell.label}-s{cell.seed}-kmax"] = resolution.reason
                continue
            cell = replace(cell, k=resolution.k, k_label=MAX)
        path = parts / f"{cell.key}.parquet"
        done.append((path, cell.shown_k))
        if path.exists():
            logger.info("cell %d/%d %s: reused", n, len(todo), cell.key)
            continue
        if cell.k > len(shots):
            skipped[cell.key] = f"bank {cell.label} has {len(shots)} usable shots, fewer than K={cell.k}"
            continue
        generator = generator or load_generator(spec.model)  # only once a cell actually needs the model
        table, reason = run_cell(spec, generator, cell, items, shots, run_id)
        if reason:
            skipped[cell.key] = reason
            continue
        banks.atomic_write(table, path)
        acc = sum(table.column("correct_strict").to_pylist()) / table.num_rows
        logger.info("cell %d/%d %s: accuracy %.1f%%", n, len(todo), cell.key, 100 * acc)
    return finish(spec, folder, done, skipped, leaks)


def labelled(path: Path, k_label: str) -> pa.Table:
    """A cell file's rows with the K label of this sweep (cells older than the column get it added)."""
    table = pq.read_table(path)
    if "k_label" in table.column_names:
        table = table.drop_columns(["k_label"])
    table = table.append_column("k_label", pa.array([k_label] * table.num_rows, pa.string()))
    return table.select(RESULT_SCHEMA.names).cast(RESULT_SCHEMA)


def finish(spec: EvalSpec, folder: Path, cell_files: list[tuple[Path, str]], skipped: dict[str, str],
           leaks: dict[str, set[str]]) -> str:
    """Combine this sweep's cells (file, K label) into results.parquet, the summary, the plot and artifacts."""
    files = [(f, label) for f, label in cell_files if f.exists()]
    if not files:
        raise EvalError(f"no cell could run: {skipped}")
    results = pa.concat_tables([labelled(f, label) for f, label in files])
    pq.write_table(results, folder / "results.parquet")
    summary = summarize(results.to_pandas())
    summary.to_csv(folder / "summary.csv", index=False)
    title = f"{spec.task}: accuracy vs shots ({spec.model})"
    plot(summary, folder / "accuracy.png", title=title)
    text = "\n\n".join([f"## {title}", "strict:", markdown_table(summary, "strict"),
                        "flexible:", markdown_table(summary, "flexible"),
                        "prompt tokens per K (mean, max over items):", prompt_tokens_table(summary)]
                       + [f"overlap with the test split: {label}: {len(ids)} shots excluded"
                          for label, ids in leaks.items() if ids]
                       + [f"skipped {key}: {why}" for key, why in skipped.items()])
    (folder / "summary.md").write_text(text + "\n")
    create_markdown_artifact(markdown=text, key="eval-summary", description=title)
    create_table_artifact(table=summary.round(4).to_dict("records"), key="eval-accuracy", description=title)
    print(f"{text}\n\nresults: {folder}")
    return str(folder)
