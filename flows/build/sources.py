"""Shot sources: one class per bank mode, and the only place that knows how a mode makes its shots.

A :class:`ShotSource` says what of a build's configuration changes its bank (:meth:`~ShotSource.key_config`),
whether it needs a model, which template it generates with, what state its chunks share
(:meth:`~ShotSource.prepare`), how one chunk of problems becomes shot rows (:meth:`~ShotSource.run_chunk`) and
what its bank report adds. ``SOURCES`` maps each mode name (the ``source`` column of its shots) to its source;
:mod:`flows.build.flow` runs any of them the same way, serially or sharded.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import pyarrow as pa

import verifiers
from flows.runtime import banks
from flows.core.data import load_problems
from flows.core.problem import Problem, content_id, normalize_text
from flows.build.queries import QUERY_FILTER_VERSION, DuplicateIndex, accept_queries, generate_queries, query_requests
from flows.build.bank_report import step_summary
from flows.core.schema import SOURCES as SOURCE_NAMES
from flows.core.schema import Shot
from flows.core.specs import BuildError, BuildSpec, config_key
from flows.build.rounds import ChunkResult, ChunkStats, Provenance, ground_truth_rows, reinforce_chunk, \
    template_prompt, unsupervised_rows
from flows.core.tasks import TASKS, task as get_task
from generators import Generator, Sampling
from generators.prompts import Template


@dataclass(frozen=True)
class Chunk:
    """One checkpointed unit of a build: consecutive problems of the selection and their position."""

    index: int
    problems: tuple[Problem, ...]

    @property
    def key(self) -> str:
        """The checkpoint key (the same for serial, sharded and refresh builds)."""
        return config_key({"index": self.index, "ids": [p.id for p in self.problems], "n": len(self.problems)})


def chunks(problems: Sequence[Problem], size: int) -> list[Chunk]:
    return [Chunk(i, tuple(problems[start:start + size])) for i, start in enumerate(range(0, len(problems), size))]


@dataclass(frozen=True)
class IteratePrompt:
    """Reinforced state with ``--iterate-from`` (the paper's A.4): the shots of the many-shot prompt."""

    shots: tuple[Shot, ...] = ()


@dataclass
class QueryPool:
    """Generated-mode state: the seed problems, and every question seen so far (grows chunk by chunk)."""

    pool: list[Problem]
    index: DuplicateIndex


class ShotSource:
    """How one bank mode makes shots; the base is a source that needs no model and shares no state."""

    mode: ClassVar[str]
    needs_model: ClassVar[bool] = False
    sequential: ClassVar[bool] = False  # a chunk depends on the chunks before it (no sharding)
    checks_steps: ClassVar[bool] = False  # accepts require_valid_steps (drops rationales with a wrong step)
    refreshable: ClassVar[bool] = True  # a refresh can add shots for the problems a bank has none for

    def key_config(self, spec: BuildSpec) -> dict[str, Any]:
        """The mode's own part of the bank key: what else changes its content."""
        return {}

    def template(self, spec: BuildSpec) -> Template | None:
        return None

    def excluded_questions(self, spec: BuildSpec) -> set[str]:
        """Normalised questions of the generation template's own examples: never shots of the bank it builds."""
        template = self.template(spec)
        return {normalize_text(q) for q, _ in template.examples} if template else set()

    def provenance(self, spec: BuildSpec, prov: Provenance) -> Provenance:
        template = self.template(spec)
        return replace(prov, template_id=template.id, template_hash=template.hash) if template else prov

    def prepare(self, spec: BuildSpec, problems: list[Problem], data_dir: str | None) -> tuple[Any, list[Problem]]:
        """The state the chunks share, and the problems left to build."""
        if spec.iterate_from:
            raise BuildError(f"iterate_from applies to reinforced builds, not {self.mode!r}")
        return None, problems

    def run_chunk(self, spec: BuildSpec, generator: Generator | None, chunk: Chunk, prov: Provenance,
                  state: Any, progress: Callable[[str], None]) -> ChunkResult:
        raise NotImplementedError

    def after_chunk(self, state: Any, part: pa.Table) -> None:
        """See a finished chunk's rows (new or reused) before the next chunk runs; only sequential sources."""

    def report(self, table: pa.Table, stats: ChunkStats, yields: Callable[[str], Any]) -> dict[str, Any]:
        """The mode's own lines of the bank report (``yields(attr)``: problems with a shot per subject/level)."""
        return {}


class GroundTruth(ShotSource):
    mode = "ground-truth"

    def run_chunk(self, spec, generator, chunk, prov, state, progress):
        return ground_truth_rows(chunk.problems, prov)

    def report(self, table, stats, yields):
        return {**verifier_lines(table, stats), "solutions failing the self-check": stats.self_check_failed}


class Unsupervised(ShotSource):
    mode = "unsupervised"

    def run_chunk(self, spec, generator, chunk, prov, state, progress):
        return unsupervised_rows(chunk.problems, prov)


class HumanCot(ShotSource):
    """The task's human-written worked examples (a task file's ``[prompt] examples``: BBH's 3-shot CoT prompt) as
    a bank of that many shots, whatever the selection: the few-shot baseline line of an eval (K = 3 for BBH)."""

    mode = "human-cot"
    refreshable = False

    def key_config(self, spec):
        return {"examples": config_key({"examples": [list(e) for e in TASKS[spec.selection.task].cot_examples]})}

    def prepare(self, spec, problems, data_dir):
        super().prepare(spec, problems, data_dir)
        return None, human_cot_problems(spec.selection.task)

    def run_chunk(self, spec, generator, chunk, prov, state, progress):
        return ground_truth_rows(chunk.problems, prov, source=self.mode)

    def report(self, table, stats, yields):
        return {**verifier_lines(table, stats), "examples failing the self-check": stats.self_check_failed}


def human_cot_problems(name: str) -> list[Problem]:
    """The task's worked examples as problems (the answer each commits to is its gold answer)."""
    found = TASKS[name]
    if not found.cot_examples:
        raise BuildError(f"task {name} has no worked examples ([prompt] examples or examples_file): no human-cot bank")
    out = []
    for q, rationale in found.cot_examples:
        answer = verifiers.extract_answer(rationale, found.fmt, question=q)
        if answer is None:
            raise BuildError(f"task {name}: a worked example commits to no {found.fmt.name} answer: {rationale[-80:]!r}")
        out.append(Problem(id=content_id(name, q), task=name, split="train", question=q, solution=rationale,
                           answer=answer))
    return out


class Reinforced(ShotSource):
    mode = "reinforced"
    needs_model = True
    checks_steps = True

    def key_config(self, spec):
        config = {"model": spec.model, "rounds": asdict(spec.rounds), "few_shot": spec.few_shot,
                  "template": self.template(spec).hash}
        if spec.iterate_from:
            config |= {"iterate_from": Path(spec.iterate_from).name, "prompt_shots": spec.prompt_shots,
                       "iterate": "all-but-prompt"}
        return config

    def template(self, spec):
        return TASKS[spec.selection.task].template(spec.few_shot)

    def prepare(self, spec, problems, data_dir):
        """With ``iterate_from``: the first ``prompt_shots`` shots of that bank are the many-shot prompt, and
        every selected problem except those shots' own is solved again with it, so the second-iteration bank is
        as large as the selection allows and no shot repeats its prompt."""
        if not spec.iterate_from:
            return IteratePrompt(), problems
        table, _ = banks.read_bank(spec.iterate_from)
        rows = [r for r in table.to_pylist() if r["rationale"] and r["task"] == spec.selection.task]
        if not rows:
            raise BuildError(f"{spec.iterate_from} has no {spec.selection.task} shots with rationales to iterate from")
        prompt = tuple(Shot.from_row(r) for r in rows[:spec.prompt_shots])
        in_prompt = {s.problem_id for s in prompt}
        left = [p for p in problems if p.id not in in_prompt]
        if not left:
            raise BuildError(f"every selected problem is in the {spec.prompt_shots}-shot prompt from {spec.iterate_from}")
        return IteratePrompt(prompt), left

    def run_chunk(self, spec, generator, chunk, prov, state, progress):
        make = template_prompt(self.template(spec), [(s.question, s.rationale) for s in state.shots])
        return reinforce_chunk(generator, chunk.problems, make, spec.rounds, prov, base_seed=spec.selection.seed,
                               chunk=chunk.index, require_valid_steps=spec.require_valid_steps, progress=progress)

    def report(self, table, stats, yields):
        return {"solved per round": stats.solved_per_round, "samples": stats.samples,
                "empty samples": stats.empty, "samples cut at max tokens": stats.truncated,
                "prompt tokens": stats.prompt_tokens, "completion tokens": stats.completion_tokens,
                "yield per subject": yields("subject"), "yield per level": yields("level"),
                **verifier_lines(table, stats),
                "correct rationales dropped for a wrong step": stats.wrong_step_rejected}


class Generated(ShotSource):
    """New bare problems written by the model from seed problems, de-duplicated against everything seen."""

    mode = "generated"
    needs_model = True
    sequential = True
    refreshable = False

    def key_config(self, spec):
        return {"model": spec.model, "rounds": asdict(spec.rounds), "few_shot": spec.few_shot,
                "query_filter": QUERY_FILTER_VERSION}

    def prepare(self, spec, problems, data_dir):
        super().prepare(spec, problems, data_dir)
        task = spec.selection.task
        seen = load_problems(task, "train", data_dir) + load_problems(task, "test", data_dir)
        return QueryPool(problems, DuplicateIndex(p.question for p in seen)), problems

    def run_chunk(self, spec, generator, chunk, prov, state, progress):
        sampling = Sampling(temperature=max(spec.rounds.temperature, 0.7), max_tokens=min(spec.rounds.max_tokens, 384),
                            seed=spec.selection.seed * 1_000_003 + chunk.index)
        requests = query_requests(state.pool, len(chunk.problems), 3, spec.selection.seed, chunk.index)
        kept, origins, counts = accept_queries(generate_queries(generator, spec.selection.task, requests, sampling),
                                               state.index, spec.selection.task)
        rows = [prov.row(p, "generated", seed_problem_ids=[s.id for s in o.seeds], sampling=sampling.to_json(),
                         seed=sampling.seed) | {"gold_answer": None} for p, o in zip(kept, origins)]
        return ChunkResult(rows, ChunkStats(tried=len(chunk.problems), **counts))

    def after_chunk(self, state, part):
        for question in part.column("question").to_pylist():
            state.index.add(question)

    def report(self, table, stats, yields):
        return {"requested": stats.requested, "malformed": stats.malformed, "duplicate": stats.duplicate,
                "kept": stats.kept}


def verifier_lines(table: pa.Table, stats: ChunkStats) -> dict[str, Any]:
    """How the verifier decided, and the step check of the rationales (sources with rationales)."""
    return {"verifier methods": dict(stats.methods), "verifier errors": dict(stats.errors), **step_summary(table)}


SOURCES: dict[str, ShotSource] = {s.mode: s for s in (GroundTruth(), Reinforced(), Unsupervised(), Generated(),
                                                      HumanCot())}
MODES = tuple(SOURCES)
REFRESH_MODES = tuple(m for m, s in SOURCES.items() if s.refreshable)
assert set(MODES) == set(SOURCE_NAMES), "flows.core.schema.SOURCES and the shot sources disagree"


def source_for(mode: str) -> ShotSource:
    if mode not in SOURCES:
        raise BuildError(f"unknown mode {mode!r}; expected one of {MODES}")
    return SOURCES[mode]


def key_config(spec: BuildSpec, with_limit: bool = True) -> dict:
    """Everything that changes a bank's content, and nothing else: the selection, the verifier, the chunking
    the mode's own part (:meth:`ShotSource.key_config`) and a task file's definition (:meth:`Task.key_config`)."""
    config = {"mode": spec.mode, **asdict(spec.selection), "verifier": verifiers.VERSION,
              "chunk_size": spec.chunk_size}
    if not with_limit:
        config.pop("limit")
    if spec.require_valid_steps:  # only when set, so banks built without it keep their keys
        config["require_valid_steps"] = True
    return config | source_for(spec.mode).key_config(spec) | get_task(spec.selection.task).key_config()
