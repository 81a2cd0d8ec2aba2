"""Tasks: everything manyshot knows about one dataset, in one frozen record per task.

A :class:`Task` holds the dataset ids and row parsing, the answer format the prompts ask for, the worked
examples and the generation template, the format of a gold rationale, the shape a generated query must
have, and the answer format ``verifiers`` grades with. ``TASKS`` is the registry: the built-in tasks here, and the
task files a process resolved (:mod:`flows.core.taskfile`), which carry their own problems, definition and digest.
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import verifiers
from flows.core.problem import DataError, Problem, content_id
from generators.prompts import ANSWER_FORMAT, FEW_SHOT, MINERVA_MATH, Template

logger = logging.getLogger(__name__)
CALCULATOR = re.compile(r"<<[^<>]*>>")


@dataclass(frozen=True)
class Task:
    name: str
    title: str                                            # the dataset's name in exports ("GSM8K")
    hub: Mapping[str, tuple[str, str | None, str]]         # split -> (hub repo, config, hub split)
    parse: Callable[[dict, str, str], Problem | None] | None  # (row, split, where) -> Problem; None skips the row
    answer_format: str                                    # the system instruction: how to end an answer
    demos: tuple[tuple[str, str], ...]                    # worked examples (unsupervised prompts' solved turns)
    cot_id: str                                           # the few-shot generation template: id and examples
    cot_examples: tuple[tuple[str, str], ...]
    gold_rationale: Callable[[Problem], str]              # a dataset solution in the prompts' answer format
    query_shape: Callable[[str], str | None]              # a generated query's task-specific cut, or None
    license: str
    license_note: str
    fmt: verifiers.Format = verifiers.Format("math")       # the answer format verifiers grade with
    has_rationale: bool = True                            # gold rationales exist (ground-truth banks possible)
    source: str | None = None                             # a task file's path (None: built in)
    definition: Mapping[str, Any] | None = None           # a task file's resolved definition (provenance)
    digest: str | None = None                             # its hash: part of bank and eval keys
    problems: Mapping[str, tuple[Problem, ...]] | None = None  # a task file's problems per split
    unparsed: tuple = ()                                  # a task file's rows skipped for an unparsed gold answer
    allow_unparsed: bool = False

    def key_config(self) -> dict:
        """What a task adds to bank and eval keys: nothing for a built-in task (their keys stay as they were)."""
        return {"task_definition": self.digest} if self.digest else {}

    def template(self, few_shot: bool) -> Template:
        """The zero-shot or few-shot chain-of-thought template for rationale generation."""
        if not few_shot or not self.cot_examples:  # a task file without worked examples: zero-shot
            return Template(id=f"{self.name}-cot-zeroshot-v1", task=self.name, system=self.answer_format)
        return Template(id=self.cot_id, task=self.name, system=self.answer_format, examples=self.cot_examples)


def task(name: str) -> Task:
    """The registered task ``name``; a :class:`DataError` naming the known ones otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise DataError(f"unknown task {name!r}; expected one of {tuple(TASKS)} or a task file (.toml)") from None


TASK_FILES_ENV = "MANYSHOT_TASK_FILES"  # task files this process resolved, for the processes it starts


FileLoader = Callable[..., "Task"]  # (path, *, allow_unparsed) -> Task
_file_loader: list[FileLoader] = []  # set once by flows.core.taskfile (which imports this module, not the reverse)


def set_file_loader(load: FileLoader) -> None:
    _file_loader[:] = [load]


class Registry(dict):
    """Tasks by name. A name this process has not resolved is looked up in the task files a parent process
    resolved (:data:`TASK_FILES_ENV`), so Dask workers and flow-run subprocesses know a user's task too (read
    with the loader :mod:`flows.core.taskfile` sets; :mod:`flows.core.data` imports it)."""

    def __missing__(self, name: str) -> Task:
        for entry in json.loads(os.environ.get(TASK_FILES_ENV, "[]")):
            if entry["name"] == name and _file_loader:
                found = _file_loader[0](entry["path"], allow_unparsed=entry["allow_unparsed"])
                self[name] = found
                return found
        raise KeyError(name)


def register(found: Task) -> str:
    """Add a task file's task to :data:`TASKS` (and to :data:`TASK_FILES_ENV`); return its name. A name taken by
    a built-in task or by another file is refused; the same file re-read replaces its task."""
    have = dict.get(TASKS, found.name)
    if have is not None and have.digest != found.digest and have.source != found.source:
        what = "a built-in task" if have.source is None else f"the task of {have.source}"
        raise DataError(f"{found.source}: name {found.name!r} is already {what}; give this task another name")
    TASKS[found.name] = found
    entries = [e for e in json.loads(os.environ.get(TASK_FILES_ENV, "[]")) if e["name"] != found.name]
    entries.append({"name": found.name, "path": found.source, "allow_unparsed": found.allow_unparsed})
    os.environ[TASK_FILES_ENV] = json.dumps(entries)
    return found.name


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


TASKS: dict[str, Task] = Registry({
    "gsm8k": Task(
        name="gsm8k", title="GSM8K",
        hub={"train": ("openai/gsm8k", "main", "train"), "test": ("openai/gsm8k", "main", "test")},
        parse=gsm8k_problem, answer_format=ANSWER_FORMAT["gsm8k"], demos=FEW_SHOT["gsm8k"],
        cot_id="gsm8k-cot-fewshot-v1", cot_examples=FEW_SHOT["gsm8k"],
        gold_rationale=gsm8k_rationale, query_shape=gsm8k_query, license="mit",
        license_note="GSM8K (openai/grade-school-math) is MIT-licensed, Copyright (c) 2021 OpenAI.",
        fmt=verifiers.Format("number")),
    "math": Task(
        name="math", title="MATH",
        hub={"train": ("hendrycks/competition_math", None, "train"), "test": ("HuggingFaceH4/MATH-500", None, "test")},
        parse=math_problem, answer_format=ANSWER_FORMAT["math"], demos=FEW_SHOT["math"],
        cot_id="math-cot-minerva4-v1", cot_examples=MINERVA_MATH,
        gold_rationale=math_rationale, query_shape=math_query, license="mit",
        license_note="MATH (Hendrycks et al. 2021) and the MATH500 split (openai/prm800k) are MIT-licensed.",
        fmt=verifiers.Format("math")),
})
BUILTIN = tuple(TASKS)
