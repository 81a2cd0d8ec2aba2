"""Task files: a user's own dataset as a TOML file (keys and formats: docs/tasks.md).

:func:`load_task_file` reads and validates the file and its data and returns a :class:`~flows.tasks.Task` holding
the problems of both splits; :func:`resolve` turns a ``--task`` value (a built-in name or a file, relative to
``base``) into a registered task name. Every error is a :class:`TaskFileError` naming the file and the key or
the row. The task's resolved definition (with the sha256 of the file and of its data) is its provenance; its
digest goes into bank and eval keys, so a changed file makes new keys and the same file anywhere the same ones.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import string
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import verifiers
from flows.core.problem import DataError, Problem, content_id
from flows.core.tasks import TASKS, Task, register, set_file_loader, task
from flows.core.taskdata import Row, read_hub_rows, read_rows, root_folder, sha256_file
from flows.core.taskpackaged import packaged_task_file
from flows.core.taskprompt import examples_from, gold_rationale_for

logger = logging.getLogger(__name__)

KEYS = {
    "": {"name", "title", "description", "license", "data", "split", "fields", "answer", "prompt"},
    "data": {"path", "records", "hub", "config", "split", "root", "duplicates"},
    "split": {"test", "seed", "train"},
    "fields": {"question", "answer", "rationale", "id", "group"},
    "answer": {"format", "labels", "ignore_case", "ignore_punctuation", "ignore_whitespace", "regexes_to_ignore"},
    "prompt": {"instruction", "examples", "examples_file", "root"},
}
UNPARSED_TOLERANCE = 0.02  # more unparsed gold answers than this share refuse the file (without --allow-unparsed)
MAX_LABELS_FROM_DATA = 50


class TaskFileError(DataError):
    """A task file or its data is invalid; the message names the file and the key or the row."""


@dataclass(frozen=True)
class Unparsed:
    where: str
    answer: str


@dataclass(frozen=True)
class TaskData:
    """What loading a task file found: the problems per split and the rows skipped for an unparsed gold answer."""

    problems: Mapping[str, tuple[Problem, ...]]
    unparsed: tuple[Unparsed, ...]


def _table(spec: Mapping, key: str, path: Path, required: bool) -> dict:
    value = spec.get(key)
    if value is None:
        if required:
            raise TaskFileError(f"{path}: missing [{key}] table")
        return {}
    if not isinstance(value, dict):
        raise TaskFileError(f"{path}: {key!r} must be a table ([{key}])")
    unknown = sorted(set(value) - KEYS[key])
    if unknown:
        raise TaskFileError(f"{path}: unknown key(s) {unknown} in [{key}]; allowed: {sorted(KEYS[key])}")
    return value


def _str(table: Mapping, key: str, where: str, required: bool = False) -> str | None:
    value = table.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise TaskFileError(f"{where}: {key} must be a non-empty string" + ("" if value is not None else " (missing)"))
    return value


def read_spec(path: Path) -> dict:
    """The TOML of a task file, its top-level keys checked."""
    if not path.is_file():
        raise TaskFileError(f"{path}: task file not found")
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TaskFileError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(spec) - KEYS[""])
    if unknown:
        raise TaskFileError(f"{path}: unknown key(s) {unknown}; allowed: {sorted(KEYS[''])}")
    name = _str(spec, "name", str(path), required=True)
    if not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise TaskFileError(f"{path}: name {name!r} may hold letters, digits, '-', '_' and '.' only")
    return spec


def template_columns(template: str, where: str) -> list[str]:
    """The columns a ``{column}`` template names (``{{`` and ``}}`` are literal braces)."""
    try:
        names = [f for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise TaskFileError(f"{where}: bad template {template!r} ({exc})") from None
    if any(not f for f in names):
        raise TaskFileError(f"{where}: template {template!r} has an empty '{{}}'; name a column")
    return names


def render(template: str, row: Mapping[str, Any]) -> str:
    values = {k: "" if v is None else str(v) for k, v in row.items()}
    return string.Formatter().vformat(template, (), values).strip()


def answer_format(table: Mapping, path: Path, labels_from_data: list[str] | None) -> verifiers.Format:
    where = f"{path}: [answer]"
    name = _str(table, "format", where, required=True)
    options = {k: v for k, v in table.items() if k != "format"}
    for key in ("ignore_case", "ignore_punctuation", "ignore_whitespace"):
        if key in options and not isinstance(options[key], bool):
            raise TaskFileError(f"{where}: {key} must be true or false")
    for key in ("labels", "regexes_to_ignore"):
        if key in options:
            value = options[key]
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                raise TaskFileError(f"{where}: {key} must be a list of strings")
            options[key] = tuple(value)
    if name == "label" and "labels" not in options:
        options["labels"] = tuple(labels_from_data or ())
    try:
        return verifiers.Format(name, **options)
    except ValueError as exc:
        raise TaskFileError(f"{where}: {exc}") from None


def _data_rows(data: Mapping, split_table: Mapping, base: Path, path: Path) -> tuple[dict[str, list[Row]], dict]:
    """Rows per source ("all", or "train" and "test") and the data part of the resolved definition."""
    files = {k: split_table[k] for k in ("train", "test") if isinstance(split_table.get(k), str)}
    if data.get("hub"):
        repo = _str(data, "hub", f"{path}: [data]")
        if "path" in data:
            raise TaskFileError(f"{path}: [data] has both path and hub; give one")
        config = data.get("config")
        if files:
            return ({k: read_hub_rows(repo, config, v) for k, v in files.items()},
                    {"hub": repo, "config": config, "splits": files})
        hub_split = data.get("split", "train")
        return {"all": read_hub_rows(repo, config, hub_split)}, {"hub": repo, "config": config, "split": hub_split}
    records = data.get("records")
    if files:
        if "path" in data:
            raise TaskFileError(f"{path}: give [data] path with a seeded holdout ([split] test = N), or "
                                "[split] train and test files, not both")
        rows = {k: read_rows(base / v, records, shown=str(base / v)) for k, v in files.items()}
        return rows, {"files": {k: {"path": v, "sha256": sha256_file(base / v)} for k, v in files.items()},
                      "records": records}
    rel = _str(data, "path", f"{path}: [data]", required=True)
    rows = read_rows(base / rel, records, shown=str(base / rel))
    return {"all": rows}, {"path": rel, "records": records, "sha256": sha256_file(base / rel)}


def _split_rows(problems: list[Problem], split_table: Mapping, path: Path) -> dict[str, list[Problem]]:
    test, seed = split_table.get("test"), split_table.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TaskFileError(f"{path}: [split] seed must be an integer")
    if isinstance(test, float) and 0 < test < 1:
        test = round(test * len(problems))
    if not isinstance(test, int) or isinstance(test, bool) or test <= 0:
        raise TaskFileError(f"{path}: [split] test must be the holdout size (an integer > 0 or a fraction "
                            "in (0, 1)), or a test file with a train file")
    if test >= len(problems):
        raise TaskFileError(f"{path}: [split] test = {test} is not smaller than the {len(problems)} usable rows; "
                            "the rest is the shot pool, so it must be smaller")
    order = sorted(problems, key=lambda p: p.id)
    random.Random(seed).shuffle(order)
    return {"test": order[:test], "train": order[test:]}


def _problems(name: str, rows: list[Row], split: str, fields: Mapping[str, str]) -> list[tuple[str, Problem]]:
    out = []
    needed = {c for key, template in fields.items() for c in template_columns(template, f"[fields] {key}")}
    for where, row in rows:
        missing = sorted(needed - set(row))
        if missing:
            raise TaskFileError(f"{where}: no column(s) {missing} in this row (it has {list(row)})")
        try:
            text = {key: render(template, row) for key, template in fields.items()}
        except (ValueError, IndexError) as exc:
            raise TaskFileError(f"{where}: a [fields] template cannot render this row ({exc})") from None
        q, a, rationale, group = text["question"], text["answer"], text.get("rationale"), text.get("group")
        if not q:
            raise TaskFileError(f"{where}: the question renders empty")
        if not a:
            raise TaskFileError(f"{where}: the answer renders empty")
        pid = f"{name}/{text['id']}" if "id" in fields else content_id(name, q)
        out.append((where, Problem(id=pid, task=name, split=split, question=q, solution=rationale or None,
                                   answer=a, subject=group or None)))
    return out


def drop_duplicates(part: list[tuple[str, Problem]], path: Path) -> list[tuple[str, Problem]]:
    """``[data] duplicates = "drop"``: a row repeating an earlier row's id is dropped; when the copies disagree
    on the answer, every copy is (the data cannot say which is right)."""
    answers: dict[str, set[str]] = {}
    for _, p in part:
        answers.setdefault(p.id, set()).add(p.answer)
    kept, seen = [], set()
    for where, p in part:
        if p.id in seen or len(answers[p.id]) > 1:
            logger.warning("%s: %s dropped: a duplicate of an earlier row%s", path, where,
                           " with another answer (every copy dropped)" if len(answers[p.id]) > 1 else "")
        else:
            kept.append((where, p))
        seen.add(p.id)
    return kept


def _check_columns(rows: dict[str, list[Row]], fields: Mapping[str, str], path: Path) -> None:
    for source, part in rows.items():
        if not part:
            raise TaskFileError(f"{path}: no rows in the data" + ("" if source == "all" else f" of {source}"))
        columns = list(part[0][1])
        for key, template in fields.items():
            for column in template_columns(template, f"{path}: [fields] {key}"):
                if column not in columns:
                    raise TaskFileError(f"{path}: [fields] {key} = {template!r} names column {column!r}, which "
                                        f"{part[0][0]} does not have; columns: {columns}")


def load_data(spec: Mapping, path: Path, *, allow_unparsed: bool = False) -> tuple[TaskData, verifiers.Format, dict]:
    """The problems of a task file (both splits), its answer format and the data part of its definition."""
    name = spec["name"]
    data = _table(spec, "data", path, required=False)
    split_table = _table(spec, "split", path, required=True)
    fields = _table(spec, "fields", path, required=True)
    for key in ("question", "answer"):
        _str(fields, key, f"{path}: [fields]", required=True)
    for key in fields:
        _str(fields, key, f"{path}: [fields]")
    base = root_folder(data.get("root"), path, f"{path}: [data] root")
    rows, data_def = _data_rows(data, split_table, base, path)
    if "root" in data:
        data_def["root"] = data["root"]  # the name of the root, never its path: the same data anywhere, one key
    _check_columns(rows, fields, path)
    made = {k: _problems(name, part, "test" if k == "test" else "train", fields) for k, part in rows.items()}
    if data.get("duplicates", "error") == "drop":
        made = {k: drop_duplicates(part, path) for k, part in made.items()}
        data_def["duplicates"] = "drop"
    elif data.get("duplicates", "error") != "error":
        raise TaskFileError(f"{path}: [data] duplicates must be \"error\" or \"drop\"")
    seen: dict[str, str] = {}
    for where, p in (x for part in made.values() for x in part):
        if p.id in seen:
            hint = "" if "id" in fields else " (the same question; set [fields] id to tell them apart)"
            raise TaskFileError(f"duplicate id {p.id!r}: {seen[p.id]} and {where}{hint}")
        seen[p.id] = where
    labels = sorted({p.answer for part in made.values() for _, p in part})
    fmt = answer_format(_table(spec, "answer", path, required=True), path,
                        labels if len(labels) <= MAX_LABELS_FROM_DATA else None)
    kept, unparsed = {}, []
    for k, part in made.items():
        ok = []
        for where, p in part:
            if verifiers.parse_gold(p.answer, fmt, p.question) is None:
                unparsed.append(Unparsed(where, p.answer))
            else:
                ok.append(p)
        kept[k] = ok
    total = sum(len(part) for part in made.values())
    if unparsed and len(unparsed) > UNPARSED_TOLERANCE * total and not allow_unparsed:
        shown = "; ".join(f"{u.where}: {u.answer[:60]!r}" for u in unparsed[:8])
        raise TaskFileError(f"{path}: {len(unparsed)} of {total} gold answers do not parse as {fmt.name} "
                            f"({shown}); fix [answer] format or [fields] answer, or pass --allow-unparsed to "
                            "skip those rows")
    if unparsed:
        logger.warning("%s: %d of %d rows skipped: gold answer does not parse as %s (first: %s)", path,
                       len(unparsed), total, fmt.name, unparsed[0].where)
    problems = kept if "all" not in kept else _split_rows(kept["all"], split_table, path)
    split_def = {k: v for k, v in split_table.items() if k in ("test", "seed")}
    return (TaskData({k: tuple(v) for k, v in problems.items()}, tuple(unparsed)), fmt,
            {"data": data_def, "split": split_def, "fields": dict(sorted(fields.items()))})


def digest(definition: Mapping) -> str:
    """The hash of a resolved definition (never an absolute path: the same file anywhere, the same digest)."""
    blob = json.dumps({k: v for k, v in definition.items() if k != "file_sha256"}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_task_file(path: Path | str, *, allow_unparsed: bool = False):
    """The :class:`~flows.tasks.Task` a task file defines, its data read and checked."""
    path = packaged_task_file(str(path)) or Path(path).resolve()
    spec = read_spec(path)
    data, fmt, data_def = load_data(spec, path, allow_unparsed=allow_unparsed)
    prompt = _table(spec, "prompt", path, required=False)
    instruction = _str(prompt, "instruction", f"{path}: [prompt]") or verifiers.instruction(fmt)
    examples, examples_def = examples_from(prompt, path)
    definition = {"name": spec["name"], "file": path.name, "file_sha256": sha256_file(path), **data_def,
                  "answer": {"format": fmt.name, **fmt.options()},
                  "prompt": {"instruction": instruction, "examples": [list(e) for e in examples], **examples_def},
                  "license": spec.get("license", "unknown")}
    key = digest(definition)
    has_rationale = "rationale" in spec["fields"]
    return Task(
        name=spec["name"], title=spec.get("title", spec["name"]), hub={}, parse=None, answer_format=instruction,
        demos=examples, cot_id=f"{spec['name']}-cot-fewshot-{key[:8]}", cot_examples=examples,
        gold_rationale=gold_rationale_for(fmt), query_shape=lambda text: text.strip() or None,
        license=str(spec.get("license", "unknown")),
        license_note=spec.get("description", f"The {spec['name']} data of task file {path.name}; its license is "
                              "as declared there."),
        fmt=fmt, has_rationale=has_rationale, source=str(path), definition=definition, digest=key,
        problems=data.problems, unparsed=data.unparsed, allow_unparsed=allow_unparsed)


def is_task_file(ref: str) -> bool:
    """Whether a ``--task`` value names a file rather than a registered task."""
    return ref.endswith(".toml") or "/" in ref or "\\" in ref


def resolve(ref: str, base: Path | str | None = None, *, allow_unparsed: bool = False) -> str:
    """The registered task name for ``ref``: a built-in or already resolved name, or a task file (relative to
    ``base``, default the working directory), which is read, checked and registered."""
    if not is_task_file(ref):
        return task(ref).name
    path = packaged_task_file(ref) or (Path(ref) if Path(ref).is_absolute() else Path(base or ".") / ref).resolve()
    stat = path.stat() if path.is_file() else None
    key = (str(path), stat and (stat.st_mtime_ns, stat.st_size), allow_unparsed)
    if stat is None or key not in _RESOLVED or dict.get(TASKS, _RESOLVED[key]) is None:
        _RESOLVED[key] = register(load_task_file(path, allow_unparsed=allow_unparsed))
    return _RESOLVED[key]


_RESOLVED: dict[tuple, str] = {}  # (path, file stat, allow_unparsed) -> name: a file is read once per process


TASK_JSON = "task.json"  # beside an eval's results: the task file it ran on, for reports and analyses


def write_task_definition(folder: Path, name: str) -> None:
    """Record a task file's path and definition in an eval run folder (nothing for a built-in task)."""
    found = task(name)
    if found.source is not None:
        record = {"name": name, "path": found.source, "allow_unparsed": found.allow_unparsed,
                  "definition": found.definition}
        (folder / TASK_JSON).write_text(json.dumps(record, indent=1) + "\n")


def register_from_folder(folder: Path) -> None:
    """Register the task file an eval run folder was made with, if it has one and it is not registered yet."""
    record_path = Path(folder) / TASK_JSON
    if not record_path.is_file():
        return
    record = json.loads(record_path.read_text())
    if dict.get(TASKS, record["name"]) is None:
        resolve(record["path"], allow_unparsed=record["allow_unparsed"])


def from_definition(definition: Mapping[str, Any]):
    """A task record from a bank's recorded definition (for its dataset card; no data, no grading)."""
    data = definition.get("data", {})
    hub = ({s: (data["hub"], data.get("config"), v) for s, v in data.get("splits", {}).items()} if "splits" in data
           else {"train": (data["hub"], data.get("config"), data.get("split")),
                 "test": (data["hub"], data.get("config"), data.get("split"))} if data.get("hub") else {})
    name = definition["name"]
    return Task(name=name, title=name, hub=hub, parse=None, answer_format=definition["prompt"]["instruction"],
                demos=(), cot_id="", cot_examples=(), gold_rationale=lambda p: "", query_shape=lambda t: t,
                license=str(definition.get("license", "unknown")),
                license_note=f"The data of task file {definition.get('file')} (sha256 "
                             f"{str(data.get('sha256', ''))[:16] or 'see the task definition'}); its license is as "
                             "declared there.",
                definition=definition, digest=digest(definition))


set_file_loader(load_task_file)
