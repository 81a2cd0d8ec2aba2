"""The prompt parts of a task file: few-shot worked examples (inline or from a file) and gold rationales.

``[prompt] examples`` is a list of ``{question = ..., rationale = ...}`` tables; ``examples_file`` (relative to the
task file) is a .json list or .jsonl of such objects, or a .txt chain-of-thought prompt of ``Q: ...`` / ``A: ...``
blocks (the BIG-Bench Hard ``cot-prompts`` layout: any lines before the first ``Q:`` are a preamble and skipped).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Mapping

import verifiers
from flows.core.problem import DataError, Problem
from flows.core.taskdata import root_folder, sha256_file

MAX_EXAMPLES = 64
_QA = re.compile(r"(?ms)^Q:[ \t]*(.*?)\n+A:[ \t]*(.*?)(?=\n+Q:|\Z)")


def _pair(item: Any, where: str) -> tuple[str, str]:
    if not isinstance(item, dict) or set(item) - {"question", "rationale"} or \
            not all(isinstance(item.get(k), str) and item[k].strip() for k in ("question", "rationale")):
        raise DataError(f"{where}: an example needs exactly 'question' and 'rationale' (non-empty strings)")
    return item["question"].strip(), item["rationale"].strip()


def read_examples_file(path: Path, shown: str) -> tuple[tuple[str, str], ...]:
    if not path.is_file():
        raise DataError(f"{shown}: examples file not found ({path})")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".txt":
        pairs = tuple((q.strip(), a.strip()) for q, a in _QA.findall(text))
        if not pairs:
            raise DataError(f"{shown}: no 'Q: ...' / 'A: ...' blocks")
        return pairs
    try:
        items = ([json.loads(line) for line in text.splitlines() if line.strip()] if path.suffix == ".jsonl"
                 else json.loads(text))
    except json.JSONDecodeError as exc:
        raise DataError(f"{shown}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(items, list):
        raise DataError(f"{shown}: expected a list of {{question, rationale}} objects")
    return tuple(_pair(item, f"{shown}: example {i}") for i, item in enumerate(items))


def examples_from(prompt: Mapping[str, Any], task_path: Path) -> tuple[tuple[tuple[str, str], ...], dict]:
    """The worked examples of ``[prompt]`` and what the definition records about their source."""
    where = f"{task_path}: [prompt]"
    if "examples" in prompt and "examples_file" in prompt:
        raise DataError(f"{where}: give examples or examples_file, not both")
    if "examples_file" in prompt:
        rel = prompt["examples_file"]
        if not isinstance(rel, str):
            raise DataError(f"{where}: examples_file must be a path (relative to the task file)")
        file = root_folder(prompt.get("root"), task_path, f"{where} root") / rel
        examples = read_examples_file(file, f"{where} examples_file {rel}")
        recorded = {"examples_file": rel, "examples_sha256": sha256_file(file)}
        if "root" in prompt:
            recorded["root"] = prompt["root"]
    else:
        items = prompt.get("examples", [])
        if not isinstance(items, list):
            raise DataError(f"{where}: examples must be a list of {{question, rationale}} tables")
        examples = tuple(_pair(item, f"{where} examples[{i}]") for i, item in enumerate(items))
        recorded = {}
    if len(examples) > MAX_EXAMPLES:
        raise DataError(f"{where}: {len(examples)} examples; at most {MAX_EXAMPLES} (the bank holds the many shots)")
    return examples, recorded


def gold_rationale_for(fmt: verifiers.Format) -> Callable[[Problem], str]:
    """A problem's gold rationale as a shot: the rendered rationale, ending with the format's answer line unless
    it already commits to the gold answer."""
    def gold(problem: Problem) -> str:
        text = (problem.solution or "").strip()
        if text and verifiers.verify(problem.answer, text, fmt, question=problem.question).correct:
            return text
        line = verifiers.answer_line(verifiers.parse_gold(problem.answer, fmt, problem.question) or problem.answer,
                                     fmt)
        return f"{text}\n{line}" if text else line
    return gold
