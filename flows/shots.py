"""Pure bank-building steps: problems (and model output) in, shot rows and statistics out.

No Prefect and no I/O here; :mod:`flows.build` wraps these in tasks and checkpoints them.
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Sequence

import verifiers
from flows.data import Problem
from generators.base import Completion, Generator, Prompt, Sampling
from generators.prompts import Template

CALCULATOR = re.compile(r"<<[^<>]*>>")
KEEP_POLICIES = ("first", "all-distinct")


class BuildError(RuntimeError):
    """A build cannot produce a bank (empty selection, model returned nothing, ...)."""


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


def ground_truth_rationale(problem: Problem) -> str:
    """The dataset solution, in the same final-answer format the model prompts ask for."""
    if problem.task == "gsm8k":
        steps = CALCULATOR.sub("", problem.solution or "").strip()
        return f"{steps}\nThe answer is {problem.answer}"
    return (problem.solution or "").strip()


def ground_truth_rows(problems: Sequence[Problem], prov: Provenance) -> tuple[list[dict], dict]:
    rationales = [ground_truth_rationale(p) for p in problems]
    verdicts = verifiers.verify_many([(p.answer, r) for p, r in zip(problems, rationales)], task=problems[0].task)
    rows = [prov.row(p, "ground-truth", rationale=r, answer=p.answer, verifier_method=v.method,
                     **step_counts(r, p.task)) for p, r, v in zip(problems, rationales, verdicts)]
    stats = {"tried": len(problems), "kept": len(rows),
             "self_check_failed": sum(not v.correct for v in verdicts),
             "methods": dict(Counter(v.method for v in verdicts))}
    return rows, stats


def step_counts(rationale: str, task: str) -> dict[str, int]:
    """The shot columns ``steps_checked`` / ``steps_wrong`` of a rationale (:func:`verifiers.check_steps`)."""
    report = verifiers.check_steps(rationale, task)
    return {"steps_checked": report.checked, "steps_wrong": report.wrong}


def unsupervised_rows(problems: Sequence[Problem], prov: Provenance) -> tuple[list[dict], dict]:
    rows = [prov.row(p, "unsupervised") for p in problems]
    return rows, {"tried": len(problems), "kept": len(rows)}


def _normalized(text: str) -> str:
    return " ".join(text.split()).lower()


def keep_correct(candidates: Iterable[tuple[str, verifiers.Verdict]], policy: str, cap: int,
                 seen: set[str]) -> list[tuple[str, verifiers.Verdict]]:
    """Correct, non-duplicate rationales of one problem under the keep policy (``seen`` is updated)."""
    if policy not in KEEP_POLICIES:
        raise BuildError(f"unknown keep policy {policy!r}; expected one of {KEEP_POLICIES}")
    limit = 1 if policy == "first" else cap
    kept = []
    for text, verdict in candidates:
        norm = _normalized(text)
        if len(kept) >= limit or not verdict.correct or norm in seen:
            continue
        seen.add(norm)
        kept.append((text, verdict))
    return kept


@dataclass(frozen=True)
class Rounds:
    samples: int
    temperature: float
    retry_temperature: float
    max_tokens: int
    rounds: int
    keep: str = "first"
    cap: int = 4


def round_seed(base: int, chunk: int, round_: int) -> int:
    """A distinct, reproducible engine seed for each chunk and round."""
    digest = hashlib.sha256(f"{base}/{chunk}/{round_}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def reinforce_chunk(generator: Generator, problems: Sequence[Problem], make_prompt, cfg: Rounds,
                    prov: Provenance, *, base_seed: int, chunk: int, require_valid_steps: bool = False,
                    progress: Callable[[str], None] = lambda message: None) -> tuple[list[dict], dict]:
    """Sample rationales, verify them, keep correct ones; retry unsolved problems in later rounds.

    Every kept shot records its step check (``steps_checked``, ``steps_wrong``). With ``require_valid_steps`` a
    correct rationale with a wrong step is not kept, so a problem whose only correct rationales have wrong
    steps stays unsolved in that round and is sampled again in the next one."""
    task = problems[0].task
    seen: dict[str, set[str]] = {p.id: set() for p in problems}
    rows: list[dict] = []
    unsolved = list(problems)
    stats: dict[str, Any] = {"tried": len(problems), "solved_per_round": [], "samples": 0,
                             "prompt_tokens": 0, "completion_tokens": 0, "empty": 0,
                             "methods": Counter(), "errors": Counter(), "wrong_step_rejected": 0}
    for r in range(cfg.rounds):
        if not unsolved:
            break
        sampling = Sampling(n=cfg.samples, temperature=cfg.temperature if r == 0 else cfg.retry_temperature,
                            max_tokens=cfg.max_tokens, seed=round_seed(base_seed, chunk, r))
        completions = generator.generate([make_prompt(p) for p in unsolved], sampling)
        if len(completions) != len(unsolved):
            raise BuildError(f"model returned {len(completions)} completions for {len(unsolved)} prompts")
        pairs = [(p.answer, t) for p, c in zip(unsolved, completions) for t in c.texts]
        verdicts = iter(verifiers.verify_many(pairs, task=task))
        still = []
        for p, c in zip(unsolved, completions):
            judged = [(t, next(verdicts)) for t in c.texts]
            _count(stats, c, judged)
            steps = {t: step_counts(t.strip(), task) for t, v in judged if v.correct}
            if require_valid_steps:
                stats["wrong_step_rejected"] += sum(s["steps_wrong"] > 0 for s in steps.values())
                judged = [(t, v) for t, v in judged if not (t in steps and steps[t]["steps_wrong"])]
            kept = keep_correct(judged, cfg.keep, cfg.cap, seen[p.id])
            tokens = dict(zip(c.texts, c.completion_tokens))
            rows += [prov.row(p, "reinforced", rationale=t.strip(), answer=v.extracted, verifier_method=v.method,
                              sampling=sampling.to_json(), seed=sampling.seed, round=r,
                              completion_tokens=tokens[t], **steps[t]) for t, v in kept]
            if not kept:
                still.append(p)
        stats["solved_per_round"].append(len(unsolved) - len(still))
        progress(f"chunk {chunk + 1} round {r + 1}/{cfg.rounds}: solved {len(unsolved) - len(still)} of "
                 f"{len(unsolved)} at temperature {sampling.temperature}")
        unsolved = still
    stats["methods"], stats["errors"] = dict(stats["methods"]), dict(stats["errors"])
    return rows, stats


def _count(stats: dict, completion: Completion, judged: list[tuple[str, verifiers.Verdict]]) -> None:
    stats["samples"] += len(judged)
    stats["prompt_tokens"] += completion.prompt_tokens
    stats["completion_tokens"] += sum(completion.completion_tokens)
    stats["empty"] += sum(not t.strip() for t, _ in judged)
    for _, v in judged:
        stats["methods"][v.method] += 1
        if v.error:
            stats["errors"][v.error] += 1


def template_prompt(template: Template, shots: Sequence[tuple[str, str]] = ()):
    """``problem -> prompt`` for a template, optionally with many-shot examples (``--iterate-from``)."""
    def make(problem: Problem) -> Prompt:
        return template.prompt(problem.question, shots)
    return make
