"""The bank-building Prefect flow: a thin shell of tasks over :mod:`flows.shots` and :mod:`flows.queries`.

Work is split into chunks of problems; each finished chunk is checkpointed as a Parquet part, so a
killed build resumes where it stopped, and a larger ``--limit`` reuses the chunks it shares.
"""
from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

import verifiers
from flows import bank as banks
from flows.data import Problem, load_problems, select
from flows.queries import DuplicateIndex, accept_queries, generate_queries, query_requests
from flows.report import build_report, publish
from flows.schema import SHOT_SCHEMA, to_table
from flows.shots import BuildError, Provenance, Rounds, ground_truth_rows, reinforce_chunk, template_prompt, \
    unsupervised_rows
from generators import GenerationError, Generator, Sampling, load_generator
from generators.prompts import cot_template

MODES = ("ground-truth", "reinforced", "unsupervised", "generated")


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
        if self.iterate_from:
            config |= {"iterate_from": Path(self.iterate_from).name, "prompt_shots": self.prompt_shots}
        return config


def retry_model_errors(task_, task_run, state) -> bool:
    """Retry only failures a retry can fix: model or server errors and I/O, never logic errors."""
    try:
        state.result()
    except (GenerationError, OSError):
        return True
    except Exception:  # noqa: BLE001 - any other failure is a bug or bad input: do not retry it
        return False
    return False


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_model_errors)
def load_selection(spec: BuildSpec, data_dir: str | None) -> list[Problem]:
    sel = spec.selection
    problems = select(load_problems(sel.task, sel.split, data_dir), limit=sel.limit, seed=sel.seed,
                      subjects=sel.subjects, levels=sel.levels)
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
                               chunk=index, progress=get_run_logger().info)
    sampling = Sampling(temperature=max(spec.rounds.temperature, 0.7), max_tokens=min(spec.rounds.max_tokens, 384),
                        seed=spec.selection.seed * 1_000_003 + index)
    requests = query_requests(context["pool"], len(problems), 3, spec.selection.seed, index)
    kept, origins, stats = accept_queries(generate_queries(generator, spec.selection.task, requests, sampling),
                                          context["index"], spec.selection.task)
    rows = [prov.row(p, "generated", seed_problem_ids=[s.id for s in o.seeds], sampling=sampling.to_json(),
                     seed=sampling.seed) | {"gold_answer": None} for p, o in zip(kept, origins)]
    return rows, stats | {"tried": len(problems)}


def _chunks(problems: list[Problem], size: int) -> list[list[Problem]]:
    return [problems[i:i + size] for i in range(0, len(problems), size)]


def _iterate_context(spec: BuildSpec, problems: list[Problem]) -> tuple[dict, list[Problem]]:
    """Shots from an existing bank, and the problems that bank has not solved yet."""
    table, _ = banks.read_bank(spec.iterate_from)
    rows = [r for r in table.to_pylist() if r["rationale"] and r["task"] == spec.selection.task]
    if not rows:
        raise BuildError(f"{spec.iterate_from} has no {spec.selection.task} shots with rationales to iterate from")
    solved = {r["problem_id"] for r in rows}
    shots = [(r["question"], r["rationale"]) for r in rows[:spec.prompt_shots]]
    return {"shots": shots}, [p for p in problems if p.id not in solved]


@flow(name="build-bank", validate_parameters=False, log_prints=True)
def build_bank(spec: BuildSpec, data_dir: str | None = None, out: str | None = None,
               generator: Generator | None = None) -> str:
    """Build (or resume, or reuse) the bank for ``spec``; return its path."""
    logger = get_run_logger()
    if spec.mode not in MODES:
        raise BuildError(f"unknown mode {spec.mode!r}; expected one of {MODES}")
    root = Path(out) if out else banks.DEFAULT_ROOT
    problems = load_selection(spec, data_dir)
    key_config = spec.key_config() | {"problems": banks.config_key([(p.id, p.answer) for p in problems])}
    path = banks.bank_path(root, spec.selection.task, spec.mode, banks.config_key(key_config))
    if path.exists():
        print(f"bank already built: {path}")
        return str(path)
    context: dict = {}
    if spec.iterate_from:
        context, problems = _iterate_context(spec, problems)
        if not problems:
            raise BuildError(f"{spec.iterate_from} already solves every selected problem")
    if spec.mode == "generated":
        train = load_problems(spec.selection.task, "train", data_dir)
        test = load_problems(spec.selection.task, "test", data_dir)
        context = {"pool": problems, "index": DuplicateIndex([p.question for p in train + test])}
    store = banks.ChunkStore(root, banks.config_key(spec.key_config(with_limit=False)))
    run_id = str(uuid.uuid4())
    dataset = f"{spec.selection.task}:{data_dir or 'hub'}"
    prov = Provenance(run_id=run_id, dataset=dataset, split=spec.selection.split,
                      model=generator.model_id if generator else None)
    parts, stats = [], []
    chunks = _chunks(problems, spec.chunk_size)
    for i, chunk in enumerate(chunks):
        chunk_key = banks.config_key({"index": i, "ids": [p.id for p in chunk], "n": len(chunk)})
        part = store.get(chunk_key)
        if part is None:
            if generator is None and spec.mode in ("reinforced", "generated"):
                generator = load_generator(spec.model, seed=spec.selection.seed)
                prov = replace(prov, model=generator.model_id)
            if spec.mode == "reinforced":
                template = cot_template(spec.selection.task, spec.few_shot)
                prov = replace(prov, template_id=template.id, template_hash=template.hash)
            rows, chunk_stats = run_chunk(spec, generator, chunk, i, prov, context)
            store.put(chunk_key, to_table(rows, SHOT_SCHEMA), chunk_stats)
            part = store.get(chunk_key)
            logger.info("chunk %d/%d: %d problems, %d shots kept", i + 1, len(chunks), len(chunk), part.num_rows)
        else:
            logger.info("chunk %d/%d: reused checkpoint (%d shots)", i + 1, len(chunks), part.num_rows)
        if spec.mode == "generated":
            for q in part.column("question").to_pylist():
                context["index"].add(q)
        parts.append(part)
        stats.append(store.stats(chunk_key))
    table = pa.concat_tables(parts)
    if table.num_rows == 0:
        raise BuildError(_empty_reason(spec, stats))
    report = build_report(spec.mode, problems, table, stats)
    meta = {"config": key_config | {"task": spec.selection.task, "model": prov.model},
            "created_at": datetime.now(timezone.utc).isoformat(), "run_id": run_id, "report": report}
    banks.write_bank(path, table, meta)
    publish(report, title=f"bank {path.name}", key="bank-report")
    print(f"bank: {path}")
    return str(path)


def _empty_reason(spec: BuildSpec, stats: list[dict]) -> str:
    samples = sum(s.get("samples", 0) for s in stats)
    empty = sum(s.get("empty", 0) for s in stats)
    if samples and empty == samples:
        return f"the model returned no text for any of {samples} samples; no bank was written"
    return f"no shot was kept ({spec.mode}, {samples} samples); no bank was written"
