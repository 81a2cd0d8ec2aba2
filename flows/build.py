"""The bank-building Prefect flow: a thin shell of tasks over :mod:`flows.shots` and :mod:`flows.queries`.

Work is split into chunks of problems; each finished chunk is checkpointed as a Parquet part, so a
killed build resumes where it stopped, and a larger ``--limit`` reuses the chunks it shares.

The outline of a build (:func:`plan`, :func:`provenance`, :func:`run_chunks`, :func:`finish`) is shared with
the sharded build (:mod:`flows.scale`) and the incremental refresh (:mod:`flows.refresh`).
"""
from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed

import verifiers
from flows import bank as banks
from flows.data import Problem, data_source, load_problems, normalize_text, select
from flows.locks import FileLock, lock_path, produce_missing
from flows.progress import current, metered, tracking
from flows.queries import QUERY_FILTER_VERSION, DuplicateIndex, accept_queries, generate_queries, query_requests
from flows.report import build_report, publish
from flows.retries import retry_model_errors
from flows.schema import SHOT_SCHEMA, to_table
from flows.shots import BuildError, Provenance, Rounds, ground_truth_rows, reinforce_chunk, template_prompt, \
    unsupervised_rows
from generators import Generator, Sampling, load_generator
from generators.prompts import cot_template

MODES = ("ground-truth", "reinforced", "unsupervised", "generated")
NEEDS_MODEL = ("reinforced", "generated")


@dataclass(frozen=True)
class Selection:
    task: str
    split: str = "train"
    limit: int | None = None
    seed: int = 0
    subjects: tuple[str, ...] = ()
    levels: tuple[int, ...] = ()


@dataclass(frozen=True)
class BuildSpec:
    mode: str
    selection: Selection
    model: str = "embedded"
    rounds: Rounds = field(default_factory=lambda: Rounds(samples=4, temperature=0.7, retry_temperature=1.0,
                                                          max_tokens=512, rounds=1))
    few_shot: bool = True
    iterate_from: str | None = None
    prompt_shots: int = 16
    chunk_size: int = 64
    require_valid_steps: bool = False  # reinforced: drop correct rationales with a wrong arithmetic step

    def key_config(self, with_limit: bool = True) -> dict:
        """Everything that changes a bank's content, and nothing else."""
        config = {"mode": self.mode, **asdict(self.selection), "verifier": verifiers.VERSION,
                  "chunk_size": self.chunk_size}
        if not with_limit:
            config.pop("limit")
        if self.mode in ("reinforced", "generated"):
            config |= {"model": self.model, "rounds": asdict(self.rounds), "few_shot": self.few_shot}
        if self.mode == "reinforced":
            config["template"] = cot_template(self.selection.task, self.few_shot).hash
        if self.mode == "generated":
            config["query_filter"] = QUERY_FILTER_VERSION
        if self.require_valid_steps:  # only when set, so banks built without it keep their keys
            config["require_valid_steps"] = True
        if self.iterate_from:
            config |= {"iterate_from": Path(self.iterate_from).name, "prompt_shots": self.prompt_shots,
                       "iterate": "all-but-prompt"}
        return config


def prompt_example_questions(spec: BuildSpec) -> set[str]:
    """Normalised questions of the generation template's own examples: never shots of the bank it builds."""
    if spec.mode != "reinforced":
        return set()
    return {normalize_text(q) for q, _ in cot_template(spec.selection.task, spec.few_shot).examples}


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_model_errors)
def load_selection(spec: BuildSpec, data_dir: str | None) -> list[Problem]:
    sel = spec.selection
    excluded = prompt_example_questions(spec)
    pool = [p for p in load_problems(sel.task, sel.split, data_dir) if normalize_text(p.question) not in excluded]
    problems = select(pool, limit=sel.limit, seed=sel.seed, subjects=sel.subjects, levels=sel.levels)
    if not problems:
        raise BuildError(f"the selection is empty: task={sel.task} split={sel.split} subjects={list(sel.subjects)} "
                         f"levels={list(sel.levels)} limit={sel.limit}")
    return problems


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[5, 20, 60], retry_condition_fn=retry_model_errors)
def run_chunk(spec: BuildSpec, generator: Generator | None, problems: list[Problem], index: int,
              prov: Provenance, context: dict) -> tuple[list[dict], dict]:
    """Produce the shot rows of one chunk (one batched model call per round)."""
    if spec.mode == "ground-truth":
        return ground_truth_rows(problems, prov)
    if spec.mode == "unsupervised":
        return unsupervised_rows(problems, prov)
    if spec.mode == "reinforced":
        make = template_prompt(cot_template(spec.selection.task, spec.few_shot), context.get("shots", ()))
        return reinforce_chunk(generator, problems, make, spec.rounds, prov, base_seed=spec.selection.seed,
                               chunk=index, require_valid_steps=spec.require_valid_steps,
                               progress=_round_done)
    sampling = Sampling(temperature=max(spec.rounds.temperature, 0.7), max_tokens=min(spec.rounds.max_tokens, 384),
                        seed=spec.selection.seed * 1_000_003 + index)
    requests = query_requests(context["pool"], len(problems), 3, spec.selection.seed, index)
    kept, origins, stats = accept_queries(generate_queries(generator, spec.selection.task, requests, sampling),
                                          context["index"], spec.selection.task)
    rows = [prov.row(p, "generated", seed_problem_ids=[s.id for s in o.seeds], sampling=sampling.to_json(),
                     seed=sampling.seed) | {"gold_answer": None} for p, o in zip(kept, origins)]
    return rows, stats | {"tried": len(problems)}


def _round_done(message: str) -> None:
    """A reinforced chunk finished a round: log it and show it (a no-op display in Dask workers)."""
    get_run_logger().info(message)
    current().round_done(message)


def _chunks(problems: list[Problem], size: int) -> list[list[Problem]]:
    return [problems[i:i + size] for i in range(0, len(problems), size)]


def chunk_key(index: int, chunk: Sequence[Problem]) -> str:
    """The checkpoint key of a chunk (the same for serial, sharded and refresh builds)."""
    return banks.config_key({"index": index, "ids": [p.id for p in chunk], "n": len(chunk)})


def run_chunks(spec: BuildSpec, ref: Any, chunks: list[list[Problem]], prov: Provenance, context: dict,
               store: banks.ChunkStore, *, submit: bool, chunk_task: Callable,
               after_chunk: Callable[[pa.Table], None] | None = None) -> tuple[pa.Table, list[dict]]:
    """Run the chunks missing from ``store`` with ``chunk_task(spec, ref, chunk, index, prov, context)``,
    checkpoint each as it finishes, and return all chunks' rows in chunk order and their stats.

    With ``submit`` the missing chunks are submitted to the flow's task runner; otherwise they run one after
    the other, and ``after_chunk`` (if given) sees each chunk's rows, reused or new, before the next chunk runs.

    Each chunk is made under its checkpoint's lock (:mod:`flows.locks`), so concurrent builds of the same
    configuration share the work: a chunk another process is making is skipped, then waited for and reused.
    """
    if submit and after_chunk is not None:
        raise ValueError("after_chunk needs the chunks to run one after the other (submit=False)")
    logger = get_run_logger()
    keys = [chunk_key(i, c) for i, c in enumerate(chunks)]
    paths = [store.path(k) for k in keys]
    reused = sum(p.exists() for p in paths)
    if reused:
        logger.info("%d/%d chunks reused from checkpoints", reused, len(chunks))
    counted: set[int] = set()

    def count(i: int, made: bool) -> None:  # the progress display: chunks done, problems solved
        if i not in counted:
            counted.add(i)
            current().advance(solved=len(set(store.get(keys[i]).column("problem_id").to_pylist())), reused=not made)

    for i, path in enumerate(paths):
        if path.exists():
            count(i, made=False)

    def save(i: int, result: tuple[list[dict], dict]) -> None:
        rows, stats = result
        store.put(keys[i], to_table(rows, SHOT_SCHEMA), stats)
        logger.info("chunk %d/%d: %d problems, %d shots kept", i + 1, len(chunks), len(chunks[i]), len(rows))
        count(i, made=True)

    def run_here(i: int) -> None:
        save(i, chunk_task(spec, ref, chunks[i], i, prov, context))

    def waiting(i: int) -> None:
        logger.info("chunk %d/%d is being made by another process (%s); waiting to reuse it", i + 1, len(chunks),
                    lock_path(paths[i]))

    if submit:
        _submit_missing(paths, lambda i: chunk_task.submit(spec, ref, chunks[i], i, prov, context), save, waiting)
    elif after_chunk is None:
        produce_missing(paths, run_here, on_wait=waiting)
    else:
        for i, key in enumerate(keys):  # in order: a chunk depends on the chunks before it
            produce_missing([paths[i]], lambda _: run_here(i), on_wait=lambda _: waiting(i))
            after_chunk(store.get(key))
    for i in range(len(chunks)):  # chunks another process made while this one waited
        count(i, made=False)
    parts = [store.get(k) for k in keys]
    return pa.concat_tables(parts) if parts else SHOT_SCHEMA.empty_table(), [store.stats(k) for k in keys]


def _submit_missing(paths: list[Path], submit_one: Callable, save: Callable, waiting: Callable[[int], None]) -> None:
    """Submit every missing chunk whose lock this process gets, all at once, saving each as it completes; then
    wait for the chunks other processes hold (and make any whose holder died before writing it)."""
    held: dict[int, FileLock] = {}
    try:
        for i, path in enumerate(paths):
            if path.exists():
                continue
            lock = FileLock(path)
            if not lock.acquire():
                continue  # another process is making it: waited for below
            if path.exists():  # written between the check and the lock
                lock.release()
            else:
                held[i] = lock
        futures = {submit_one(i): i for i in held}
        for future in as_completed(list(futures)):
            i = futures[future]
            save(i, future.result())
            held.pop(i).release()
    finally:
        for lock in held.values():
            lock.release()
    produce_missing(paths, lambda i: save(i, submit_one(i).result()), on_wait=waiting)


def _iterate_context(spec: BuildSpec, problems: list[Problem]) -> tuple[dict, list[Problem]]:
    """Iterated reinforced ICL (the paper's A.4): the first ``prompt_shots`` shots of an existing bank become a
    many-shot prompt, and every selected problem except those shots' own is solved again with it, so the
    second-iteration bank is as large as the selection allows and no shot repeats its prompt."""
    table, _ = banks.read_bank(spec.iterate_from)
    rows = [r for r in table.to_pylist() if r["rationale"] and r["task"] == spec.selection.task]
    if not rows:
        raise BuildError(f"{spec.iterate_from} has no {spec.selection.task} shots with rationales to iterate from")
    prompt = rows[:spec.prompt_shots]
    in_prompt = {r["problem_id"] for r in prompt}
    return {"shots": [(r["question"], r["rationale"]) for r in prompt]}, [p for p in problems if p.id not in in_prompt]


@dataclass
class Plan:
    """What a build makes: the problems it builds, the bank's key config and path, the checkpoint store, and
    (unless the bank is ``built`` already) the context its chunks share."""

    problems: list[Problem]
    key_config: dict
    path: Path
    store: banks.ChunkStore
    built: bool = False
    context: dict = field(default_factory=dict)


def plan(spec: BuildSpec, data_dir: str | None, out: str | None) -> Plan:
    """Validate the mode, select the problems and derive the bank's path; then, unless that bank is already
    built, the chunks' context: shots to iterate from (and the problems left), or the generated-mode pool."""
    if spec.mode not in MODES:
        raise BuildError(f"unknown mode {spec.mode!r}; expected one of {MODES}")
    if spec.require_valid_steps and spec.mode != "reinforced":
        raise BuildError(f"require_valid_steps applies to reinforced builds, not {spec.mode!r}")
    root = Path(out) if out else banks.DEFAULT_ROOT
    problems = load_selection(spec, data_dir)
    key_config = spec.key_config() | {"problems": banks.config_key([(p.id, p.answer) for p in problems])}
    path = banks.bank_path(root, spec.selection.task, spec.mode, banks.config_key(key_config))
    store = banks.ChunkStore(root, banks.config_key(spec.key_config(with_limit=False)))
    if path.exists():
        print(f"bank already built: {path}")
        return Plan(problems, key_config, path, store, built=True)
    context: dict = {}
    if spec.iterate_from:
        context, problems = _iterate_context(spec, problems)
        if not problems:
            raise BuildError(f"every selected problem is in the {spec.prompt_shots}-shot prompt from {spec.iterate_from}")
    if spec.mode == "generated":
        train = load_problems(spec.selection.task, "train", data_dir)
        test = load_problems(spec.selection.task, "test", data_dir)
        context = {"pool": problems, "index": DuplicateIndex([p.question for p in train + test])}
    return Plan(problems, key_config, path, store, context=context)


def provenance(spec: BuildSpec, data_dir: str | None, generator: Any) -> Provenance:
    """A new run's provenance. The model is known here only for a generator instance; a model loaded later
    (or resolved in a worker from a ``GeneratorRef``) is filled in where the chunk runs."""
    prov = Provenance(run_id=str(uuid.uuid4()), dataset=f"{spec.selection.task}:{data_source(data_dir)}",
                      split=spec.selection.split, model=getattr(generator, "model_id", None))
    if spec.mode == "reinforced":
        template = cot_template(spec.selection.task, spec.few_shot)
        prov = replace(prov, template_id=template.id, template_hash=template.hash)
    return prov


def finish(spec: BuildSpec, work: Plan, table: pa.Table, stats: list[dict], run_id: str, model: str | None) -> str:
    """Write the bank of a finished build (never an empty one) and publish its report; return its path. A bank
    is written once: when a concurrent run of the same build wrote it first, that bank is the result."""
    if table.num_rows == 0:
        raise BuildError(_empty_reason(spec, stats))
    report = build_report(spec.mode, work.problems, table, stats)
    meta = {"config": work.key_config | {"task": spec.selection.task, "model": model},
            "created_at": datetime.now(timezone.utc).isoformat(), "run_id": run_id, "report": report}
    if not banks.publish_bank(work.path, table, meta):
        print(f"bank already built by a concurrent run: {work.path}")
        return str(work.path)
    publish(report, title=f"bank {work.path.name}", key="bank-report")
    print(f"bank: {work.path}")
    return str(work.path)


def table_models(table: pa.Table) -> str | None:
    """The models a bank's rows name, comma-separated (None when no row names one)."""
    return ",".join(sorted({m for m in table.column("model").to_pylist() if m})) or None


@dataclass
class LazyGenerator:
    """A serial build's generator, loaded when a chunk first needs it: a fully checkpointed rerun loads none."""

    spec: BuildSpec
    generator: Generator | None = None

    def get(self) -> Generator | None:
        if self.generator is None and self.spec.mode in NEEDS_MODEL:
            self.generator = metered(load_generator(self.spec.model, seed=self.spec.selection.seed))
        return self.generator

    @property
    def model_id(self) -> str | None:
        return self.generator.model_id if self.generator else None


def _serial_chunk(spec: BuildSpec, lazy: LazyGenerator, problems: list[Problem], index: int, prov: Provenance,
                  context: dict) -> tuple[list[dict], dict]:
    """``run_chunk`` in the flow process, with the generator loaded on first use."""
    generator = lazy.get()
    if generator is not None:
        prov = replace(prov, model=generator.model_id)
    return run_chunk(spec, generator, problems, index, prov, context)


@flow(name="build-bank", validate_parameters=False, log_prints=True)
def build_bank(spec: BuildSpec, data_dir: str | None = None, out: str | None = None,
               generator: Generator | None = None) -> str:
    """Build (or resume, or reuse) the bank for ``spec``; return its path."""
    work = plan(spec, data_dir, out)
    if work.built:
        return str(work.path)

    def remember_questions(part: pa.Table) -> None:  # generated mode: later chunks must not repeat these
        for question in part.column("question").to_pylist():
            work.context["index"].add(question)

    lazy = LazyGenerator(spec, metered(generator))
    prov = provenance(spec, data_dir, generator)
    chunks = _chunks(work.problems, spec.chunk_size)
    with tracking(len(chunks), "chunks", f"bank {spec.selection.task} {spec.mode}"):
        table, stats = run_chunks(spec, lazy, chunks, prov, work.context, work.store, submit=False,
                                  chunk_task=_serial_chunk,
                                  after_chunk=remember_questions if spec.mode == "generated" else None)
    return finish(spec, work, table, stats, prov.run_id, lazy.model_id)


def _empty_reason(spec: BuildSpec, stats: list[dict]) -> str:
    samples = sum(s.get("samples", 0) for s in stats)
    empty = sum(s.get("empty", 0) for s in stats)
    if samples and empty == samples:
        return f"the model returned no text for any of {samples} samples; no bank was written"
    return f"no shot was kept ({spec.mode}, {samples} samples); no bank was written"
