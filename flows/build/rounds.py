"""Pure bank-building steps: problems (and model output) in, shot rows and statistics out.

No Prefect and no I/O here; :mod:`flows.build.flow` wraps these in tasks and checkpoints them.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Sequence

import verifiers
from flows.core.problem import Problem
from flows.core.seeds import derive_seed
from flows.core.specs import KEEP_POLICIES, BuildError, Rounds
from flows.core.tasks import TASKS
from generators.base import Completion, Generator, Prompt, Sampling
from generators.prompts import Template

@dataclass
class ChunkStats:
    """What one chunk of a build counted; summed over chunks for the bank's report (:meth:`total`).

    Checkpoints store it as JSON (:meth:`to_json`); a checkpoint written before a counter existed reads it as 0.
    """

    tried: int = 0
    kept: int = 0
    samples: int = 0
    empty: int = 0
    truncated: int = 0             # samples the model stopped at max_tokens (finish reason "length")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    solved_per_round: list[int] = field(default_factory=list)
    methods: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    wrong_step_rejected: int = 0   # reinforced --require-valid-steps: correct rationales with a wrong step
    self_check_failed: int = 0     # ground truth: reference solutions whose answer the verifier rejects
    requested: int = 0             # generated: queries asked for, and why the rejected ones were
    malformed: int = 0
    duplicate: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"methods": dict(self.methods), "errors": dict(self.errors)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ChunkStats":
        known = {f.name for f in fields(cls)}
        stats = cls(**{k: v for k, v in data.items() if k in known})
        stats.methods, stats.errors = Counter(stats.methods), Counter(stats.errors)
        return stats

    @classmethod
    def total(cls, chunks: Iterable["ChunkStats"]) -> "ChunkStats":
        out = cls()
        for s in chunks:
            for f in fields(cls):
                if f.name == "solved_per_round":
                    rounds = s.solved_per_round
                    out.solved_per_round += [0] * (len(rounds) - len(out.solved_per_round))
                    for r, n in enumerate(rounds):
                        out.solved_per_round[r] += n
                elif f.name in ("methods", "errors"):
                    getattr(out, f.name).update(getattr(s, f.name))
                else:
                    setattr(out, f.name, getattr(out, f.name) + getattr(s, f.name))
        return out


@dataclass(frozen=True)
class ChunkResult:
    """The shot rows one chunk made, and what it counted."""

    rows: list[dict[str, Any]]
    stats: ChunkStats


@dataclass(frozen=True)
class Provenance:
    """What every shot of one build records about how it was made."""

    run_id: str
    dataset: str
    split: str
    model: str | None = None
    template_id: str | None = None
    template_hash: str | None = None

    def row(self, problem: Problem, source: str, **fields: Any) -> dict[str, Any]:
        rationale = fields.get("rationale")
        shot_key = f"{problem.id}\x1f{source}\x1f{rationale or ''}\x1f{fields.get('question', problem.question)}"
        return {
            "shot_id": hashlib.sha256(shot_key.encode()).hexdigest()[:20],
            "problem_id": problem.id, "task": problem.task, "question": problem.question,
            "gold_answer": problem.answer, "source": source, "subject": problem.subject,
            "level": problem.level, "model": self.model, "template_id": self.template_id,
            "template_hash": self.template_hash, "verifier_version": verifiers.VERSION,
            "dataset": self.dataset, "split": self.split,
            "created_at": datetime.now(timezone.utc), "run_id": self.run_id, **fields,
        }


def ground_truth_rows(problems: Sequence[Problem], prov: Provenance, source: str = "ground-truth") -> ChunkResult:
    rationales = [TASKS[p.task].gold_rationale(p) for p in problems]
    fmt = TASKS[problems[0].task].fmt
    verdicts = verifiers.verify_many([(p.answer, r) for p, r in zip(problems, rationales)], fmt,
                                     questions=[p.question for p in problems])
    rows = [prov.row(p, source, rationale=r, answer=p.answer, verifier_method=v.method,
                     **step_counts(r, fmt)) for p, r, v in zip(problems, rationales, verdicts)]
    return ChunkResult(rows, ChunkStats(tried=len(problems), kept=len(rows),
                                        self_check_failed=sum(not v.correct for v in verdicts),
                                        methods=Counter(v.method for v in verdicts)))


def step_counts(rationale: str, fmt: verifiers.Format) -> dict[str, int]:
    """The shot columns ``steps_checked`` / ``steps_wrong`` of a rationale (:func:`verifiers.check_steps`)."""
    report = verifiers.check_steps(rationale, fmt)
    return {"steps_checked": report.checked, "steps_wrong": report.wrong}


def unsupervised_rows(problems: Sequence[Problem], prov: Provenance) -> ChunkResult:
    rows = [prov.row(p, "unsupervised") for p in problems]
    return ChunkResult(rows, ChunkStats(tried=len(problems), kept=len(rows)))


def _rationale_key(text: str) -> str:
    """Two rationales are duplicates when they differ only in case and whitespace. Stricter than
    :func:`flows.core.problem.normalize_text` (which drops punctuation, for question matching): "3.5" and "35" differ."""
    return " ".join(text.split()).lower()


def keep_correct(candidates: Iterable[tuple[str, verifiers.Verdict]], policy: str, cap: int,
                 seen: set[str]) -> list[tuple[str, verifiers.Verdict]]:
    """Correct, non-duplicate rationales of one problem under the keep policy (``seen`` is updated)."""
    if policy not in KEEP_POLICIES:
        raise BuildError(f"unknown keep policy {policy!r}; expected one of {KEEP_POLICIES}")
    limit = 1 if policy == "first" else cap
    kept = []
    for text, verdict in candidates:
        norm = _rationale_key(text)
        if len(kept) >= limit or not verdict.correct or norm in seen:
            continue
        seen.add(norm)
        kept.append((text, verdict))
    return kept


def round_seed(base: int, chunk: int, round_: int) -> int:
    """A distinct, reproducible engine seed for each chunk and round."""
    return derive_seed(base, chunk, round_)


def reinforce_chunk(generator: Generator, problems: Sequence[Problem], make_prompt, cfg: Rounds,
                    prov: Provenance, *, base_seed: int, chunk: int, require_valid_steps: bool = False,
                    progress: Callable[[str], None] = lambda message: None) -> ChunkResult:
    """Sample rationales, verify them, keep correct ones; retry unsolved problems in later rounds.

    Every kept shot records its step check (``steps_checked``, ``steps_wrong``). With ``require_valid_steps`` a
    correct rationale with a wrong step is not kept, so a problem whose only correct rationales have wrong
    steps stays unsolved in that round and is sampled again in the next one."""
    fmt = TASKS[problems[0].task].fmt
    seen: dict[str, set[str]] = {p.id: set() for p in problems}
    rows: list[dict] = []
    unsolved = list(problems)
    stats = ChunkStats(tried=len(problems))
    for r in range(cfg.rounds):
        if not unsolved:
            break
        sampling = Sampling(n=cfg.samples, temperature=cfg.temperature if r == 0 else cfg.retry_temperature,
                            max_tokens=cfg.max_tokens, seed=round_seed(base_seed, chunk, r))
        completions = generator.generate([make_prompt(p) for p in unsolved], sampling)
        if len(completions) != len(unsolved):
            raise BuildError(f"model returned {len(completions)} completions for {len(unsolved)} prompts")
        pairs = [(p.answer, t) for p, c in zip(unsolved, completions) for t in c.texts]
        questions = [p.question for p, c in zip(unsolved, completions) for _ in c.texts]
        verdicts = iter(verifiers.verify_many(pairs, fmt, questions=questions))
        still = []
        for p, c in zip(unsolved, completions):
            judged = [(t, next(verdicts)) for t in c.texts]
            _count(stats, c, judged)
            steps = {t: step_counts(t.strip(), fmt) for t, v in judged if v.correct}
            if require_valid_steps:
                stats.wrong_step_rejected += sum(s["steps_wrong"] > 0 for s in steps.values())
                judged = [(t, v) for t, v in judged if not (t in steps and steps[t]["steps_wrong"])]
            kept = keep_correct(judged, cfg.keep, cfg.cap, seen[p.id])
            tokens = dict(zip(c.texts, c.completion_tokens))
            rows += [prov.row(p, "reinforced", rationale=t.strip(), answer=v.extracted, verifier_method=v.method,
                              sampling=sampling.to_json(), seed=sampling.seed, round=r,
                              completion_tokens=tokens[t], **steps[t]) for t, v in kept]
            if not kept:
                still.append(p)
        stats.solved_per_round.append(len(unsolved) - len(still))
        progress(f"chunk {chunk + 1} round {r + 1}/{cfg.rounds}: solved {len(unsolved) - len(still)} of "
                 f"{len(unsolved)} at temperature {sampling.temperature}")
        unsolved = still
    stats.kept = len(rows)
    return ChunkResult(rows, stats)


def _count(stats: ChunkStats, completion: Completion, judged: list[tuple[str, verifiers.Verdict]]) -> None:
    stats.samples += len(judged)
    stats.prompt_tokens += completion.prompt_tokens
    stats.completion_tokens += sum(completion.completion_tokens)
    stats.empty += sum(not t.strip() for t, _ in judged)
    stats.truncated += sum(reason == "length" for reason in completion.finish_reasons)
    stats.methods.update(v.method for _, v in judged)
    stats.errors.update(v.error for _, v in judged if v.error)


def template_prompt(template: Template, shots: Sequence[tuple[str, str]] = ()):
    """``problem -> prompt`` for a template, optionally with many-shot examples (``--iterate-from``)."""
    def make(problem: Problem) -> Prompt:
        return template.prompt(problem.question, shots)
    return make
