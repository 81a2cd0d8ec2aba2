"""Prompt templates: pure functions from problems and shots to chat messages.

Every template has an id and a content hash (recorded in bank provenance), so a changed template
never silently reuses a bank built with the old one.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Sequence

from generators.base import Prompt

ANSWER_FORMAT = {
    "gsm8k": 'Solve the problem step by step. End with a line of the form "The answer is N".',
    "math": "Solve the problem step by step. Put the final answer in \\boxed{}.",
}

# Two worked examples per task for the few-shot CoT template (written for manyshot, not from a dataset).
FEW_SHOT = {
    "gsm8k": (
        ("Tom has 3 boxes with 12 apples each. He gives away 10 apples. How many apples does he have left?",
         "Tom starts with 3 * 12 = 36 apples. After giving away 10 he has 36 - 10 = 26 apples.\nThe answer is 26"),
        ("A shirt costs $20 and is on sale for 25% off. What is the sale price in dollars?",
         "The discount is 25% of 20, which is 0.25 * 20 = 5 dollars. The sale price is 20 - 5 = 15 dollars.\nThe answer is 15"),
    ),
    "math": (
        ("What is the sum of the roots of $x^2 - 5x + 6 = 0$?",
         "By Vieta's formulas the sum of the roots of $x^2 + bx + c$ is $-b$, so the sum is $5$. "
         "Indeed $x^2-5x+6=(x-2)(x-3)$ has roots $2$ and $3$.\nThe final answer is $\\boxed{5}$."),
        ("Simplify $\\frac{12}{18}$.",
         "The greatest common divisor of 12 and 18 is 6, so $\\frac{12}{18} = \\frac{2}{3}$.\n"
         "The final answer is $\\boxed{\\frac{2}{3}}$."),
    ),
}

# The paper's MATH prompt (Minerva, Lewkowycz et al. 2022, appendix D.2): four MATH training problems with
# their reference solutions (answers in \\boxed{}), verbatim from MATH train (ids in MINERVA_MATH_IDS).
# Bank builds exclude these problems, so no shot repeats a prompt example.
MINERVA_MATH_IDS = ("train/algebra/943.json", "train/precalculus/372.json", "train/algebra/256.json",
                    "train/algebra/1951.json")
MINERVA_MATH = (
    ("Find the domain of the expression $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.",
     "The expressions inside each square root must be non-negative. Therefore, $x-2 \\ge 0$, so $x\\ge2$, and "
     "$5 - x \\ge 0$, so $x \\le 5$. Also, the denominator cannot be equal to zero, so $5-x>0$, which gives $x<5$. "
     "Therefore, the domain of the expression is $\\boxed{[2,5)}$."),
    ("If $\\det \\mathbf{A} = 2$ and $\\det \\mathbf{B} = 12,$ then find $\\det (\\mathbf{A} \\mathbf{B}).$",
     "We have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B}) = (2)(12) = \\boxed{24}.$"),
    ("Terrell usually lifts two 20-pound weights 12 times. If he uses two 15-pound weights instead, how many "
     "times must Terrell lift them in order to lift the same total weight?",
     "If Terrell lifts two 20-pound weights 12 times, he lifts a total of $2\\cdot 12\\cdot20=480$ pounds of weight.  "
     "If he lifts two 15-pound weights instead for $n$ times, he will lift a total of $2\\cdot15\\cdot n=30n$ pounds "
     "of weight.  Equating this to 480 pounds, we can solve for $n$: \\begin{align*}\n30n&=480\\\\\n"
     "\\Rightarrow\\qquad n&=480/30=\\boxed{16}\n\\end{align*}"),
    ("If the system of equations\n\n\\begin{align*}\n6x-4y&=a,\\\\\n6y-9x &=b.\n\\end{align*}has a solution "
     "$(x, y)$ where $x$ and $y$ are both nonzero, find $\\frac{a}{b},$ assuming $b$ is nonzero.",
     "If we multiply the first equation by $-\\frac{3}{2}$, we obtain\n\n$$6y-9x=-\\frac{3}{2}a.$$Since we also know "
     "that $6y-9x=b$, we have\n\n$$-\\frac{3}{2}a=b\\Rightarrow\\frac{a}{b}=\\boxed{-\\frac{2}{3}}.$$"),
)

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
        return chat(self.system, (*self.examples, *shots), question)


def chat(system: str, turns: Iterable[tuple[str, str]], question: str) -> Prompt:
    """The one shape of every prompt: a system instruction, (user, assistant) turns, then the question."""
    messages: Prompt = [{"role": "system", "content": system}]
    for q, a in turns:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    messages.append({"role": "user", "content": question})
    return messages


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
