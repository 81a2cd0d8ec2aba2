"""Many-shot prompts from a bank: nested shot orders, the paper's formats, budgets and leakage.

For each seed one ordered shot list is drawn; the K-shot prompt uses its first K shots, so every
prompt of a sweep extends the smaller ones and all test questions share the same K-shot prefix.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from flows.runtime.banks import BankError
from flows.core.problem import Problem, normalize_text
from flows.core.schema import Shot
from generators.base import Prompt
from flows.core.tasks import TASKS
from generators.prompts import chat

UNSUPERVISED_PREAMBLE = "You will be provided Problems similar to the ones below:"
UNSUPERVISED_BRIDGE = ("Now, I am going to give you a series of demonstrations of Problems and Solutions. "
                       "When you respond, respond only with the Solution of the final Problem, thinking step by step.")
# Task files (BIG-Bench Hard and a user's own): the paper's BBH wording, the bridge ending with the task's instruction
QUESTIONS_PREAMBLE = "You will be provided questions similar to the ones below:"
QUESTIONS_BRIDGE = ("Now, I am going to give you a series of demonstrations of questions and answers. When you respond, "
                    "respond only with the answer to the final question, thinking step by step.")


@dataclass(frozen=True)
class BankView:
    """The shots of one bank as the evaluation sees them."""

    label: str
    source: str
    task: str
    shots: tuple[Shot, ...]

    @classmethod
    def from_rows(cls, label: str, rows: Sequence[dict]) -> "BankView":
        if not rows:
            raise BankError(f"bank {label} has no shots")
        sources = {r["source"] for r in rows}
        if len(sources) != 1:
            raise BankError(f"bank {label} mixes shot sources {sorted(sources)}")
        ordered = sorted(rows, key=lambda r: r["shot_id"])
        return cls(label, sources.pop(), rows[0]["task"],
                   tuple(Shot.from_row(r) for r in ordered))

    @property
    def unsupervised(self) -> bool:
        return all(s.rationale is None for s in self.shots)


def contaminated(view: BankView, test: Sequence[Problem]) -> set[str]:
    """Problem ids of bank shots whose normalised question appears in the test split."""
    test_texts = {normalize_text(p.question) for p in test}
    return {s.problem_id for s in view.shots if normalize_text(s.question) in test_texts}


def many_shot_prompt(task: str, shots: Sequence[Shot], question: str) -> Prompt:
    """Problem/solution turns for solved shots; the paper's unsupervised format for bare problems (for a task file,
    its BBH wording: questions, then the instruction that fixes the answer format, then the worked examples)."""
    spec = TASKS[task]
    if shots and all(s.rationale is None for s in shots) and spec.source is not None:
        listing = "\n\n".join(f"Question:\n{s.question}" for s in shots)
        opening = (f"{QUESTIONS_PREAMBLE}\n\n{listing}\n\n{QUESTIONS_BRIDGE} {spec.answer_format}", "Understood.")
        return chat(spec.answer_format, (opening, *spec.demos), question)
    if shots and all(s.rationale is None for s in shots):
        listing = "\n\n".join(f"Problem:\n{s.question}" for s in shots)
        opening = (f"{UNSUPERVISED_PREAMBLE}\n\n{listing}\n\n{UNSUPERVISED_BRIDGE}", "Understood.")
        return chat(spec.answer_format, (opening, *spec.demos), question)
    return chat(spec.answer_format, ((s.question, s.rationale) for s in shots), question)
