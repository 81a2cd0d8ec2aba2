"""Tasks: everything manyshot knows about one dataset, in one frozen record per task.

A :class:`Task` holds the dataset ids and row parsing, the answer format the prompts ask for, the worked
examples and the generation template, the format of a gold rationale, and the shape a generated query must
have. ``TASKS`` is the registry: adding a task is one entry here (plus its rules in ``verifiers``, which
grade answers by task name).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Callable, Mapping

from flows.core.problem import DataError, Problem, content_id
from generators.prompts import ANSWER_FORMAT, FEW_SHOT, MINERVA_MATH, Template

logger = logging.getLogger(__name__)
CALCULATOR = re.compile(r"<<[^<>]*>>")


@dataclass(frozen=True)
class Task:
    name: str
    title: str                                            # the dataset's name in exports ("GSM8K")
    hub: Mapping[str, tuple[str, str | None, str]]         # split -> (hub repo, config, hub split)
    parse: Callable[[dict, str, str], Problem | None]     # (row, split, where) -> Problem; None skips the row
    answer_format: str                                    # the system instruction: how to end an answer
    demos: tuple[tuple[str, str], ...]                    # worked examples (unsupervised prompts' solved turns)
    cot_id: str                                           # the few-shot generation template: id and examples
    cot_examples: tuple[tuple[str, str], ...]
    gold_rationale: Callable[[Problem], str]              # a dataset solution in the prompts' answer format
    query_shape: Callable[[str], str | None]              # a generated query's task-specific cut, or None
    license: str
    license_note: str

    def template(self, few_shot: bool) -> Template:
        """The zero-shot or few-shot chain-of-thought template for rationale generation."""
        if not few_shot:
            return Template(id=f"{self.name}-cot-zeroshot-v1", task=self.name, system=self.answer_format)
        return Template(id=self.cot_id, task=self.name, system=self.answer_format, examples=self.cot_examples)


def task(name: str) -> Task:
    """The registered task ``name``; a :class:`DataError` naming the known ones otherwise."""
    if name not in TASKS:
        raise DataError(f"unknown task {name!r}; expected one of {tuple(TASKS)}")
    return TASKS[name]


def cot_template(name: str, few_shot: bool) -> Template:
    return task(name).template(few_shot)


def gsm8k_problem(row: dict, split: str, where: str) -> Problem:
    question, answer = row.get("question"), row.get("answer")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: missing or empty 'question'")
    if not isinstance(answer, str) or "####" not in answer:
        raise DataError(f"{where}: 'answer' has no '#### <final answer>' line")
    solution, _, final = answer.rpartition("####")
    final = final.strip()
    if not final:
        raise DataError(f"{where}: empty final answer after '####'")
    return Problem(id=content_id("gsm8k", question), task="gsm8k", split=split, question=question.strip(),
                   solution=solution.strip(), answer=final)


def math_problem(row: dict, split: str, where: str) -> Problem | None:
    """A MATH row; None for a row whose answer is present but empty (ungradeable, skipped with a warning)."""
    problem, answer = row.get("problem"), row.get("answer")
    if not isinstance(problem, str) or not problem.strip():
        raise DataError(f"{where}: missing or empty 'problem'")
    if not isinstance(answer, str):
        raise DataError(f"{where}: missing 'answer'")
    if not answer.strip():
        logger.warning("%s: empty 'answer', row skipped", where)
        return None
    level = row.get("level")
    if isinstance(level, str):
        digits = level.removeprefix("Level ").strip()
        level = int(digits) if digits.isdigit() else None
    uid = row.get("unique_id")
    return Problem(id=f"math/{uid}" if uid else content_id("math", problem), task="math", split=split,
                   question=problem.strip(), solution=row.get("solution"), answer=answer.strip(),
                   subject=row.get("subject") or row.get("type"), level=level)


def gsm8k_rationale(problem: Problem) -> str:
    """The GSM8K solution without its calculator annotations, ending "The answer is N" like the prompts ask."""
    steps = CALCULATOR.sub("", problem.solution or "").strip()
    return f"{steps}\nThe answer is {problem.answer}"


def math_rationale(problem: Problem) -> str:
    return (problem.solution or "").strip()


def gsm8k_query(text: str) -> str | None:
    """GSM8K problems are one paragraph ending in a question, with no worked arithmetic ("=")."""
    text = text.split("\n", 1)[0].strip()
    return None if not text.endswith("?") or "=" in text else text


def math_query(text: str) -> str:
    """MATH problems may span lines and use any notation."""
    return text


TASKS: dict[str, Task] = {
    "gsm8k": Task(
        name="gsm8k", title="GSM8K",
        hub={"train": ("openai/gsm8k", "main", "train"), "test": ("openai/gsm8k", "main", "test")},
        parse=gsm8k_problem, answer_format=ANSWER_FORMAT["gsm8k"], demos=FEW_SHOT["gsm8k"],
        cot_id="gsm8k-cot-fewshot-v1", cot_examples=FEW_SHOT["gsm8k"],
        gold_rationale=gsm8k_rationale, query_shape=gsm8k_query, license="mit",
        license_note="GSM8K (openai/grade-school-math) is MIT-licensed, Copyright (c) 2021 OpenAI."),
    "math": Task(
        name="math", title="MATH",
        hub={"train": ("hendrycks/competition_math", None, "train"), "test": ("HuggingFaceH4/MATH-500", None, "test")},
        parse=math_problem, answer_format=ANSWER_FORMAT["math"], demos=FEW_SHOT["math"],
        cot_id="math-cot-minerva4-v1", cot_examples=MINERVA_MATH,
        gold_rationale=math_rationale, query_shape=math_query, license="mit",
        license_note="MATH (Hendrycks et al. 2021) and the MATH500 split (openai/prm800k) are MIT-licensed."),
}
