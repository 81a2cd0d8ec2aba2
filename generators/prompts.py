"""Prompt templates: pure functions from problems and shots to chat messages.

Every template has an id and a content hash (recorded in bank provenance), so a changed template
never silently reuses a bank built with the old one.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

from generators.base import Prompt

ANSWER_FORMAT = {
    "gsm8k": 'Solve the problem step by step. End with a line of the form "The answer is N".',
    "math": "Solve the problem step by step. Put the final answer in \\boxed{}.",
}

# Two worked examples per task for the few-shot CoT template (written for manyshot, not from a dataset).
FEW_SHOT = {
    "gsm8k": [
        ("Tom has 3 boxes with 12 apples each. He gives away 10 apples. How many apples does he have left?",
         "Tom starts with 3 * 12 = 36 apples. After giving away 10 he has 36 - 10 = 26 apples.\nThe answer is 26"),
        ("A shirt costs $20 and is on sale for 25% off. What is the sale price in dollars?",
         "The discount is 25% of 20, which is 0.25 * 20 = 5 dollars. The sale price is 20 - 5 = 15 dollars.\nThe answer is 15"),
    ],
    "math": [
        ("What is the sum of the roots of $x^2 - 5x + 6 = 0$?",
         "By Vieta's formulas the sum of the roots of $x^2 + bx + c$ is $-b$, so the sum is $5$. "
         "Indeed $x^2-5x+6=(x-2)(x-3)$ has roots $2$ and $3$.\nThe final answer is $\\boxed{5}$."),
        ("Simplify $\\frac{12}{18}$.",
         "The greatest common divisor of 12 and 18 is 6, so $\\frac{12}{18} = \\frac{2}{3}$.\n"
         "The final answer is $\\boxed{\\frac{2}{3}}$."),
    ],
}

GENERATE_INSTRUCTION = (
    "Here are some example problems of one kind. Write one new problem of the same kind and "
    "difficulty. Write only the problem statement, with no solution and no answer."
)


@dataclass(frozen=True)
class Template:
    id: str
    task: str
    system: str
    examples: tuple[tuple[str, str], ...] = ()

    @property
    def hash(self) -> str:
        blob = "\x1f".join([self.id, self.task, self.system, *(q + "\x1e" + a for q, a in self.examples)])
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def prompt(self, question: str, shots: Sequence[tuple[str, str]] = ()) -> Prompt:
        """System instruction, then template examples and shots as user/assistant turns, then the question."""
        messages: Prompt = [{"role": "system", "content": self.system}]
        for q, a in (*self.examples, *shots):
            messages.append({"role": "user", "content": q})
            messages.append({"role": "assistant", "content": a})
        messages.append({"role": "user", "content": question})
        return messages


def cot_template(task: str, few_shot: bool) -> Template:
    """The zero-shot or few-shot chain-of-thought template for ``task``."""
    if task not in ANSWER_FORMAT:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(ANSWER_FORMAT)}")
    examples = tuple(FEW_SHOT[task]) if few_shot else ()
    return Template(id=f"{task}-cot-{'fewshot' if few_shot else 'zeroshot'}-v1", task=task,
                    system=ANSWER_FORMAT[task], examples=examples)


def generate_query_prompt(task: str, seeds: Sequence[str]) -> Prompt:
    """Ask the model for one new bare problem in the style of ``seeds``."""
    listing = "\n\n".join(f"Problem {i + 1}:\n{q}" for i, q in enumerate(seeds))
    return [{"role": "user", "content": f"{GENERATE_INSTRUCTION}\n\n{listing}\n\nProblem {len(seeds) + 1}:"}]


def render_completion(prompt: Prompt) -> str:
    """Render chat messages as one plain-text completion prompt for base (non-chat) models."""
    parts: list[str] = []
    for m in prompt:
        if m["role"] == "system":
            parts.append(m["content"])
        elif m["role"] == "user":
            parts.append(f"Problem:\n{m['content']}")
        else:
            parts.append(f"Solution:\n{m['content']}")
    if prompt and prompt[-1]["role"] == "user":
        parts.append("Solution:\n")
    return "\n\n".join(parts)
