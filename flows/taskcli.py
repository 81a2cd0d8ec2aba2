"""``manyshot task check`` and ``manyshot task list``: what a task file says, as manyshot understood it."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Sequence

import verifiers
from flows.core.data import load_problems
from flows.core.taskfile import TaskFileError, is_task_file, load_task_file, read_spec
from flows.core.taskpackaged import packaged_refs
from flows.core.tasks import BUILTIN, TASKS
from flows.core.tasks import task as get_task

SHOWN = 3


def _messages(prompt: list[dict]) -> str:
    return "\n".join(f"  [{m['role']}] " + m["content"].replace("\n", "\n    ") for m in prompt)


def check_command(ref: str, *, allow_unparsed: bool = False, data_dir: str | None = None) -> str:
    """Validate a task (file or name) and its data; describe splits, prompts, parsed gold answers, unparsed rows."""
    if is_task_file(ref):  # read, not registered: checking a file never clashes with a task of the same name
        task = load_task_file(ref, allow_unparsed=allow_unparsed)
        splits = {s: list(task.problems[s]) for s in ("train", "test")}
    else:
        task = get_task(ref)
        splits = {s: load_problems(task.name, s, data_dir) for s in ("train", "test")}
    out = [f"task: {task.name}" + (f" ({task.source}, definition {task.digest})" if task.source else " (built in)"),
           f"answer format: {task.fmt.name}" + (f" {json.dumps(task.fmt.options())}" if task.fmt.options() else "")]
    if task.definition:
        data = {k: task.definition[k] for k in ("data", "split")}
        out.append(f"data: {json.dumps(data)}")
    out.append("problems: " + ", ".join(f"{s} {len(ps)}" for s, ps in splits.items())
               + (" (train is the shot pool, test the held-out eval set)"))
    groups = sorted({p.subject for ps in splits.values() for p in ps if p.subject})
    if groups:
        out.append(f"groups: {len(groups)} ({', '.join(groups[:10])}{', ...' if len(groups) > 10 else ''})")
    out.append("gold rationales: " + ("yes (ground-truth banks possible)" if task.has_rationale
                                      else "no ([fields] rationale not set: no ground-truth banks)"))
    out.append(f"step checks: {'yes' if task.fmt.name in verifiers.ARITHMETIC else 'no (not an arithmetic format)'}")
    out.append(f"prompt: {len(task.cot_examples)} worked examples; instruction: {task.answer_format!r}")
    pool = splits["train"][:SHOWN]
    template = task.template(few_shot=bool(task.cot_examples))
    for i, p in enumerate(pool, 1):
        out.append(f"\ngeneration prompt {i} ({p.id}, template {template.id}):\n{_messages(template.prompt(p.question))}")
    out.append("\ngold answers as the verifier reads them:")
    for p in pool:
        parsed = verifiers.parse_gold(p.answer, task.fmt, p.question)
        out.append(f"  {p.id}: {p.answer!r} -> {parsed!r}")
    if task.has_rationale and pool:
        out.append(f"gold rationale of {pool[0].id} as a shot:\n  " + task.gold_rationale(pool[0]).replace("\n", "\n  "))
    if task.unparsed:
        out.append(f"\n{len(task.unparsed)} rows skipped, gold answer does not parse as {task.fmt.name}:")
        out += [f"  {u.where}: {u.answer!r}" for u in task.unparsed]
    else:
        out.append("\nevery gold answer parses as " + task.fmt.name)
    return "\n".join(out)


def _task_files(paths: Sequence[str]) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths):
        found += sorted(p.glob("*.toml")) if p.is_dir() else [p]
    return found


def _looks_like_task(path: Path) -> bool:
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return isinstance(spec.get("fields"), dict) and "name" in spec


def list_command(paths: Sequence[str] | None) -> str:
    """The built-in tasks, then the task files in ``paths`` (default ``.`` and ``./tasks``): name, format, file.
    Files named explicitly must be task files; folders are searched for .toml files that look like one."""
    rows = [f"{name:<20} {TASKS[name].fmt.name:<8} built in ({TASKS[name].title})" for name in BUILTIN]
    for ref, path in packaged_refs():  # shipped task files, addressed as group/task (their data: --data-dir)
        rows.append(f"{ref:<44} {read_spec(path)['answer']['format']:<8} shipped ({path.name})")
    explicit = [p for p in (paths or []) if not Path(p).is_dir()]
    for path in _task_files(paths or [".", "tasks"]):
        if str(path) not in explicit and not _looks_like_task(path):
            continue
        try:
            spec = read_spec(path)
        except TaskFileError as exc:
            rows.append(f"{'?':<20} {'?':<8} {path}: {exc}")
            continue
        answer = spec.get("answer", {})
        fmt = answer.get("format", "?") if isinstance(answer, dict) else "?"
        rows.append(f"{spec['name']:<20} {fmt:<8} {path}")
    return "\n".join(rows)

