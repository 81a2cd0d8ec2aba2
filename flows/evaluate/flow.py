"""The many-shot evaluation Prefect flow: banks x seeds x K, one batched model call per cell.

Cells run seed by seed with K ascending, so each prompt extends a prefix the engine has just
cached; with several endpoints, one cell per endpoint at a time (:mod:`flows.evaluate.parallel`). Finished
cells are checkpointed and reused by reruns of the same configuration.

Concurrent runs of the same configuration share the cells: each cell (and each ``max`` resolution) is
made under its checkpoint's file lock (:mod:`flows.runtime.locks`); a cell another process holds is skipped at
first, then waited for and reused, or made here if that process died before writing it. Ctrl-C and
SIGTERM raise :class:`~flows.runtime.interrupt.CellsInterrupted`, which says how many cells were kept.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import TerminationSignal

import verifiers
from flows.runtime import banks
from flows.core.data import load_problems, select
from flows.evaluate.embeddings import EmbeddingError
from flows.runtime.interrupt import CellsInterrupted, SweepProgress, deferred_signals, signal_number, signals_allowed
from flows.runtime.locks import claim
from flows.evaluate.prompts import BankView, contaminated, many_shot_prompt
from flows.evaluate.metrics import line_label, order_spread, plot, plot_orders, summarize
from flows.evaluate.paired import paired_differences
from flows.core.cellkey import CellKey
from flows.core.problem import Problem
from flows.runtime.progress import current, metered, tracking
from flows.evaluate.results import EvalResult, Skipped
from flows.runtime.retries import retry_model_errors
from flows.core.schema import RESULT_SCHEMA, to_table, validate
from flows.evaluate.shot_selection import SelectionError, ShotSelector, make_selectors, nests, parse_select
from flows.core.specs import MAX, EvalError, EvalSpec, ShotCount, ShotCountError, parse_shots
from flows.evaluate.shotcounts import Resolution, resolve_max
from flows.evaluate.cellfiles import ITEMS_FIELD, items_digest, read_resolution, stale_cell, task_digest
from flows.evaluate.items import ITEMS_FILE, items_table
from flows.evaluate.parallel import sweep_cells
from generators import Generator, Sampling, load_generator, prompt_hash

DEFAULT_ROOT = Path("runs") / "evals"
from flows.core.taskfile import write_task_definition
from flows.core.tasks import task as get_task


@dataclass(frozen=True)
class Cell:
    view: BankView | None
    seed: int
    k: ShotCount
    k_label: str = ""  # what the sweep asked for: "16", or "max" for a resolved max cell
    select: str = "random"  # the selector's label, e.g. "similar/minilm"
    order: int = 0

    @property
    def label(self) -> str:
        return self.view.label if self.view else "none"

    @property
    def name(self) -> CellKey:
        return CellKey(self.label, self.seed, self.k, self.select, self.order)

    @property
    def selection(self) -> str:
        """The cell name's selection part: empty for the default (random order 0, the names cells always had)."""
        return self.name.selection

    @property
    def key(self) -> str:
        return self.name.name

    @property
    def shown_k(self) -> str:
        return self.k_label or str(self.k)


def bank_views(paths: tuple[str, ...]) -> list[BankView]:
    views = []
    for path in paths:
        table, _ = banks.read_bank(path)
        views.append(BankView.from_rows(Path(path).stem, table.to_pylist()))
    return views


def cells(spec: EvalSpec, views: list[BankView], selectors: dict[tuple[str, str], ShotSelector]) -> list[Cell]:
    """Seed, then bank, then selection, then order, then K ascending (prefix order, ``max`` last); K=0 once,
    independent of banks, seeds, selections and orders.

    Seed-major order means a stopped sweep has every bank covered for its first seeds.
    """
    shots = parse_shots(spec.shots)
    out = [Cell(None, 0, 0)] if 0 in shots else []
    for seed in range(spec.seeds):
        out += [Cell(view, seed, k, select=selectors[view.label, strategy].label, order=order)
                for view in views for strategy in parse_select(spec.select) for order in range(spec.orders)
                for k in shots if k != 0]
    return out


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[5, 20, 60], retry_condition_fn=retry_model_errors)
def run_cell(spec: EvalSpec, generator: Generator, cell: Cell, items: list[Problem], selector: ShotSelector | None,
             run_id: str, digest: str) -> tuple[pa.Table | None, str | None]:
    """Generate and score one (bank, seed, selection, order, K) cell. Returns (rows, None) or (None, skip reason);
    the rows' Parquet metadata records ``digest``, the items' content key."""
    with signals_allowed():
        return _score_cell(spec, generator, cell, items, selector, run_id, digest)


def _score_cell(spec: EvalSpec, generator: Generator, cell: Cell, items: list[Problem],
                selector: ShotSelector | None, run_id: str, digest: str) -> tuple[pa.Table | None, str | None]:
    def shots(question: str) -> list:
        return selector.shots(question, cell.k, cell.seed, cell.order) if selector and cell.k else []

    chosen = [shots(p.question) for p in items]
    prompts = [many_shot_prompt(spec.task, c, p.question) for p, c in zip(items, chosen)]
    tokens = [generator.count_tokens(p) for p in prompts]
    budget = generator.max_model_len - spec.max_tokens
    if max(tokens) > budget:
        return None, (f"K={cell.k} needs up to {max(tokens)} prompt tokens; max_model_len {generator.max_model_len} "
                      f"leaves {budget} after {spec.max_tokens} generation tokens")
    sampling = Sampling(n=spec.samples, temperature=spec.temperature, max_tokens=spec.max_tokens, seed=cell.seed)
    completions = generator.generate(prompts, sampling)
    responses = [(p, prompt, n, i, t, [s.shot_id for s in ids])
                 for p, prompt, n, c, ids in zip(items, prompts, tokens, completions, chosen)
                 for i, t in enumerate(c.texts)]
    pairs = [(p.answer, t) for p, _, _, _, t, _ in responses]
    fmt, questions = get_task(spec.task).fmt, [p.question for p, _, _, _, _, _ in responses]
    strict = verifiers.verify_many(pairs, fmt, mode="strict", questions=questions)
    flexible = verifiers.verify_many(pairs, fmt, mode="flexible", questions=questions)
    now = datetime.now(timezone.utc)
    source = cell.view.source if cell.view else "zero-shot"
    transfer = bool(cell.view and cell.view.task != spec.task)
    rows = []
    for (p, prompt, n, sample, text, shot_ids), vs, vf in zip(responses, strict, flexible):
        rows.append({"run_id": run_id, "task": spec.task, "bank": cell.label, "source": source,
                     "transfer": transfer, "k": cell.k, "seed": cell.seed, "select": cell.select,
                     "order": cell.order, "item_id": p.id,
                     "sample": sample, "prompt_hash": prompt_hash(prompt), "shot_ids": shot_ids, "prompt_tokens": n,
                     "response": text, "gold": p.answer, "extracted_strict": vs.extracted,
                     "extracted_flexible": vf.extracted, "correct_strict": vs.correct,
                     "correct_flexible": vf.correct, "method": vs.method, "error": vs.error,
                     "model": generator.model_id, "created_at": now})
    table = to_table(rows, RESULT_SCHEMA)
    return table.replace_schema_metadata({**(table.schema.metadata or {}), ITEMS_FIELD: digest}), None


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
             generator: Generator | None = None) -> EvalResult:
    """Run (or resume) the evaluation; return its result (the run folder, the summary rows, skipped cells).
    The eval folder and its ``cells/`` appear with the first file written in them; a failed evaluation leaves
    no empty folder behind."""
    try:
        shot_counts = parse_shots(spec.shots)
    except ShotCountError as exc:
        raise EvalError(f"--shots: {exc}") from None
    if any(k != 0 for k in shot_counts) and not spec.banks:
        raise EvalError("K > 0 needs at least one --bank")
    test = load_problems(spec.task, "test", data_dir)
    items = select(test, limit=spec.limit, seed=0)
    digest = items_digest(items)
    folder = Path(out or DEFAULT_ROOT) / f"{spec.task}-{spec.key(digest, task_digest(spec.task))}"
    try:
        return _sweep(spec, folder, test, items, digest, generator)
    except BaseException:
        remove_if_empty(folder / "cells", folder)
        raise


def remove_if_empty(*folders: Path) -> None:
    """Remove each folder that exists and is empty, in order (a child before its parent)."""
    for path in folders:
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def _sweep(spec: EvalSpec, folder: Path, test: list[Problem], items: list[Problem], digest: str,
           generator: Generator | None) -> EvalResult:
    logger = get_run_logger()
    parts = folder / "cells"
    views = bank_views(spec.banks)
    leaks = _check_leakage(spec, views, test)
    selectors = _selectors(spec, views, leaks, items)
    lines = {v.label for v in views} | {line_label(label, s.label) for (label, _), s in selectors.items()}
    if spec.reference is not None and spec.reference not in lines:
        raise EvalError(f"--reference {spec.reference!r} is none of the banks: {', '.join(sorted(lines)) or 'none'}")
    todo = cells(spec, views, selectors)
    run = CellRun(spec, items, digest, selectors, parts, generator, len(todo))
    try:
        with signals_allowed():
            with tracking(len(todo), "cells", f"eval {spec.task}", solved_word="correct"):
                sweep_cells(run, todo, logger)  # one cell per endpoint at a time with several endpoints
            subjects = {p.id: p.subject for p in items if p.subject}
            return finish(spec, folder / "runs" / spec.run_key(), run.cell_files(), run.skipped_cells(), leaks,
                          subjects, replace_stale=run.recomputed, items=items)
    except (KeyboardInterrupt, TerminationSignal) as exc:
        raise CellsInterrupted(run.progress, signal_number(exc)) from None


def _selectors(spec: EvalSpec, views: list[BankView], leaks: dict[str, set[str]],
               items: list[Problem]) -> dict[tuple[str, str], ShotSelector]:
    """One selector per (bank label, strategy), the test questions embedded at once where a strategy needs it."""
    try:
        strategies = parse_select(spec.select)
        if spec.orders < 1:
            raise SelectionError(f"--orders must be at least 1, got {spec.orders}")
        if MAX in parse_shots(spec.shots) and (per_question := [s for s in strategies if not nests(s)]):
            raise SelectionError(f"--shots max needs prompts that nest; --select {','.join(per_question)} gives "
                                 "each question its own shots: give K values instead")
        selectors = make_selectors(views, strategies, leaks, embedder=spec.embedder,
                                   questions=[p.question for p in items], group=f"{spec.task}-test")
    except (SelectionError, EmbeddingError) as exc:
        raise EvalError(str(exc)) from None
    return selectors


class CellRun:
    """This process's pass over the cells of one sweep: what it kept, skipped and which generator it loaded."""

    def __init__(self, spec: EvalSpec, items: list[Problem], digest: str,
                 selectors: dict[tuple[str, str], ShotSelector], parts: Path, generator: Generator | None, total: int):
        self.spec, self.items, self.digest, self.parts, self.generator = spec, items, digest, parts, metered(generator)
        self.selectors = {(label, selector.label): selector for (label, _), selector in selectors.items()}
        self.total, self.run_id = total, str(uuid.uuid4())
        self.recomputed = False  # a stale cell or resolution was made again: the run folder is rewritten
        self.progress = SweepProgress(parts, total)
        self.done: dict[int, tuple[Path, str]] = {}  # cell number -> (file, K label)
        self.skipped: dict[int, Skipped] = {}  # cell number -> why it did not run
        self.logger = get_run_logger()

    def cell_files(self) -> list[tuple[Path, str]]:
        return [self.done[n] for n in sorted(self.done)]

    def skipped_cells(self) -> tuple[Skipped, ...]:
        return tuple(self.skipped[n] for n in sorted(self.skipped))

    def _model(self) -> Generator:
        if self.generator is None:  # once a cell needs the model
            with current().loading():
                self.generator = metered(load_generator(self.spec.model))
        return self.generator

    def _skip(self, n: int, cell: Cell, reason: str) -> bool:
        self.skipped[n] = Skipped(cell.label, cell.seed, cell.shown_k, reason, cell.selection)
        self.progress.skipped.add(n)
        current().advance(skipped=True)
        return True

    def step(self, n: int, cell: Cell, *, wait: bool) -> bool:
        """Reuse, make or skip cell ``n``. Without ``wait`` return False at once if another process holds the
        cell (or its ``max`` resolution); with ``wait`` wait for that process, then reuse its file or make it."""
        selector = self.selectors[cell.label, cell.select] if cell.view else None
        if cell.k == MAX:
            resolution = self.resolve(cell, selector.order(cell.seed), wait=wait)
            if resolution is None:
                return False
            if resolution.k == 0:
                return self._skip(n, cell, resolution.reason)
            cell = replace(cell, k=resolution.k, k_label=MAX)
        path = cell.name.path(self.parts)
        self.done[n] = (path, cell.shown_k)
        self.progress.files[n] = path
        if self._reuse(n, cell, path, ""):
            return True
        if selector and cell.k > selector.usable:
            return self._skip(n, cell, f"bank {cell.label} has {selector.usable} usable shots, fewer than K={cell.k}")
        with claim(path, wait=wait) as got:
            if not got:
                return False
            if self._reuse(n, cell, path, " (made by another process)"):
                return True
            if path.exists():
                path.unlink()  # stale (said by _reuse): made again below
                self.recomputed = True
            banks.remove_leftovers(path)
            generator = self._model()
            current().note(f"cell {n}/{self.total} {cell.key}: generating")
            started = time.monotonic()
            with deferred_signals():  # a signal during Prefect's task bookkeeping waits until the cell is saved
                table, reason = run_cell(self.spec, generator, cell, self.items, selector, self.run_id, self.digest)
                if reason:
                    return self._skip(n, cell, reason)
                banks.atomic_write(table, path, exclusive=True)
        correct = sum(table.column("correct_strict").to_pylist())
        self.logger.info("cell %d/%d %s: accuracy %.1f%% (%.1f s)", n, self.total, cell.key,
                         100 * correct / table.num_rows, time.monotonic() - started)
        current().advance(solved=correct)
        return True

    def _reuse(self, n: int, cell: Cell, path: Path, how: str) -> bool:
        """Reuse the cell file at ``path`` when it exists and was made for this run's items; say why not otherwise."""
        if not path.exists():
            return False
        stale = stale_cell(path, self.items, self.digest)
        if stale:
            self.logger.warning("cell %d/%d %s: not reused: %s; computing it again", n, self.total, cell.key, stale)
            return False
        self.logger.info("cell %d/%d %s: reused%s", n, self.total, cell.key, how)
        current().advance(solved=_correct(path), reused=True)
        return True

    def _resolution(self, path: Path) -> Resolution | None:
        """The stored resolution at ``path`` if it holds one for this run's items (a stale one is deleted)."""
        if not path.exists():
            return None
        resolution = read_resolution(path, self.digest)
        if resolution is None:
            self.logger.warning("%s: resolved for other test items; resolving K=max again", path.name)
            path.unlink(missing_ok=True)
            self.recomputed = True
        return resolution

    def resolve(self, cell: Cell, shots: list, *, wait: bool) -> Resolution | None:
        """The K of a ``max`` cell, read from its resolution file or computed (loading the model), stored and
        printed; None without ``wait`` while another process is computing it. Orders share their strategy's
        resolution (a permutation of the same shots has the same turns); each cell still checks its budget."""
        path = replace(cell.name, k=MAX, order=0).path(self.parts, ".json")
        if (stored := self._resolution(path)) is not None:
            return stored
        with claim(path, wait=wait) as got:
            if not got:
                return None
            if (stored := self._resolution(path)) is not None:
                return stored
            banks.remove_leftovers(path)
            generator = self._model()
            current().note(f"finding K=max for {cell.label} seed {cell.seed}")
            resolution = resolve_max(generator, self.spec.task, shots, self.items, self.spec.max_tokens)
            blob = json.dumps(asdict(resolution) | {"max_model_len": generator.max_model_len, "items": self.digest})
            banks.write_file_atomic(path, lambda tmp: Path(tmp).write_text(blob))
        print(f"K=max for {cell.label} seed {cell.seed}{cell.selection}: K={resolution.k} ({resolution.reason})")
        return resolution


def _correct(path: Path) -> int:
    """Strictly correct responses in a cell file."""
    return sum(pq.read_table(path, columns=["correct_strict"]).column("correct_strict").to_pylist())


def labelled(path: Path, k_label: str) -> pa.Table:
    """A cell file's rows with the K label of this sweep (cells older than the column get it added)."""
    table = pq.read_table(path)
    if "k_label" in table.column_names:
        table = table.drop_columns(["k_label"])
    table = table.append_column("k_label", pa.array([k_label] * table.num_rows, pa.string()))
    return validate(table, RESULT_SCHEMA)


def finish(spec: EvalSpec, folder: Path, cell_files: list[tuple[Path, str]], skipped: tuple[Skipped, ...],
           leaks: dict[str, set[str]], subjects: dict[str, str] | None = None, *,
           replace_stale: bool = False, items: tuple[Problem, ...] | list[Problem] = ()) -> EvalResult:
    """Combine this sweep's cells (file, K label) into its run folder, written once: results.parquet, the
    summary (:class:`~flows.results.EvalResult`), the plot (with ``--orders`` N > 1 also orders.csv and
    orders.png: the accuracy spread over orders, overall and per subject), the test ``items`` (``items.parquet``:
    the report needs no data dir) and artifacts. The folder appears
    whole (a hidden folder renamed into place); a sweep that already has one, identical by construction, leaves
    it as it is, unless ``replace_stale`` (this sweep recomputed stale cells): then the old folder is replaced."""
    files = [(f, label) for f, label in cell_files if f.exists()]
    if not files:
        why = "; ".join(s.line for s in skipped) or f"the sweep has no cells (shots {spec.shots}, seeds {spec.seeds})"
        raise EvalError(f"no cell could run: {why}")
    results = pa.concat_tables([labelled(f, label) for f, label in files])
    frame = results.to_pandas()
    result = EvalResult(spec.task, spec.model, folder, summarize(frame), skipped,
                        {label: len(ids) for label, ids in leaks.items()},
                        order_spread(frame, subjects) if spec.orders > 1 else None,
                        paired_differences(frame), spec.reference)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with claim(folder, wait=True):  # one writer at a time; leftovers of a killed one go
        if replace_stale and folder.exists():
            shutil.rmtree(folder)
        if not (folder / "results.parquet").exists():
            for stale in folder.parent.glob(f".{glob.escape(folder.name)}.tmp-*"):
                shutil.rmtree(stale)
            tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
            banks.atomic_write(results, tmp / "results.parquet")
            pq.write_table(items_table(items), tmp / ITEMS_FILE)
            result.write(tmp)
            write_task_definition(tmp, spec.task)
            if result.orders is not None:
                result.orders.to_csv(tmp / "orders.csv", index=False)
                plot_orders(frame, tmp / "orders.png", title=f"{result.title}: shot orders")
            plot(result.summary, tmp / "accuracy.png", title=result.title)
            os.chmod(tmp, 0o777 & ~banks.umask())  # mkdtemp makes 0700
            os.rename(tmp, folder)
    text = result.markdown()
    create_markdown_artifact(markdown=text, key="eval-summary", description=result.title)
    create_table_artifact(table=result.summary.round(4).to_dict("records"), key="eval-accuracy",
                          description=result.title)
    print(f"{text}\n\nresults: {folder}")
    return result
