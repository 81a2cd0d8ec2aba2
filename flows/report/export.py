"""A bank as a Hugging Face dataset folder: the Parquet data plus a dataset card, optionally pushed to a hub.

Layout of an export (what ``datasets.load_dataset(DIR)`` and the hub read, via the card's ``configs``)::

    README.md                           dataset card: YAML front matter, provenance, build report, how to load
    data/train-00000-of-00001.parquet   the bank file, byte for byte (its key-value metadata included)
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import yaml

from flows.runtime.banks import BankError, read_bank
from flows.core.tasks import BUILTIN, TASKS, Task
from flows.core.taskfile import from_definition

DATA_FILE = "data/train-00000-of-00001.parquet"
EXPORT_ENTRIES = {"README.md", "data"}
HUB_TIMEOUT_S = 5.0
MODES = {
    "ground-truth": "each shot is a dataset problem with its reference solution, kept when the verifier "
                    "accepts the solution's final answer",
    "reinforced": "each shot is a model-written chain-of-thought rationale, kept only when its final answer "
                  "verifies against the dataset's gold answer (reinforced ICL)",
    "unsupervised": "each shot is a bare dataset problem without a solution (unsupervised ICL)",
    "human-cot": "the shots are the task's human-written few-shot chain-of-thought prompt (e.g. BBH's 3-shot CoT)",
    "generated": "each shot is a model-written new problem without a solution, filtered for well-formedness "
                 "and near-duplicates of the dataset",
}
SIZE_BUCKETS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))


class ExportError(BankError):
    """A bank could not be exported or pushed; the message names the folder or the hub."""


def size_category(n: int) -> str:
    """The hub's ``size_categories`` bucket for ``n`` rows."""
    for bound, name in SIZE_BUCKETS:
        if n < bound:
            return name
    return "n>1B"


def _values(table: pa.Table, column: str) -> Counter:
    return Counter(v for v in table.column(column).to_pylist() if v is not None)


def _task(table: pa.Table, path: Path, meta: dict[str, Any]) -> Task:
    """The bank's one task: registered, or described by the task definition its metadata records."""
    tasks = sorted(_values(table, "task"))
    if len(tasks) == 1 and meta.get("task_definition"):
        return from_definition(meta["task_definition"])
    if len(tasks) != 1 or tasks[0] not in BUILTIN:
        raise ExportError(f"{path} holds shots of tasks {tasks}; an export needs one of {sorted(BUILTIN)} or a "
                          "bank built from a task file")
    return TASKS[tasks[0]]


def card_metadata(table: pa.Table, meta: dict[str, Any], path: Path) -> dict[str, Any]:
    """The card's YAML front matter."""
    task = _task(table, path, meta)
    modes = sorted(_values(table, "source"))
    splits = sorted(_values(table, "split"))
    return {
        "pretty_name": f"{task.title} {'/'.join(modes)} shot bank ({path.stem})",
        "license": task.license,
        "language": ["en"],
        "task_categories": ["text-generation", "question-answering"],
        "size_categories": [size_category(table.num_rows)],
        "source_datasets": sorted({task.hub[s][0] for s in splits if s in task.hub}),
        "tags": list(dict.fromkeys(["manyshot", "many-shot-icl", "in-context-learning", "chain-of-thought", "math",
                                    task.name, *modes])),
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
    }


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text.replace("|", "\\|").replace("\n", " ")


def _counted(counts: Counter, limit: int = 4) -> str:
    if not counts:
        return "none"
    items = [f"`{_cell(v)}` ({n})" for v, n in counts.most_common(limit)]
    more = len(counts) - limit
    return ", ".join(items) + (f", and {more} more" if more > 0 else "")


def public(value: Any) -> Any:
    """``value`` without machine paths: an absolute path becomes its last part (in lists and mappings too)."""
    if isinstance(value, str) and os.path.isabs(value):
        return Path(value).name
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [public(v) for v in value]
    return value


def public_dataset(value: str, split: str) -> str:
    """A provenance ``dataset`` value (``TASK:WHERE``) as a card shows it: a local data folder becomes the hub
    dataset it is a copy of (or the folder's name, for a task without one)."""
    task, sep, where = value.partition(":")
    if not sep or not os.path.isabs(where):
        return value
    hub = TASKS[task].hub.get(split) if task in TASKS and TASKS[task].hub else None
    return f"{task}:{hub[0]} (local copy)" if hub else f"{task}:{Path(where).name}"


def _provenance(table: pa.Table, meta: dict[str, Any], path: Path) -> list[tuple[str, str]]:
    templates = Counter(f"{r['template_id']} ({r['template_hash']})" for r in
                        table.select(["template_id", "template_hash"]).to_pylist() if r["template_id"])
    rows = [("bank file", f"`{path.name}`"),
            ("shot sources", _counted(_values(table, "source"))),
            ("model", _counted(_values(table, "model"))),
            ("sampling", _counted(_values(table, "sampling"))),
            ("template", _counted(templates)),
            ("verifier version", _counted(_values(table, "verifier_version"))),
            ("verifier methods", _counted(_values(table, "verifier_method"))),
            ("dataset", _counted(Counter({public_dataset(str(k), str(split)): n for (k, split), n in Counter(
                zip(table.column("dataset").to_pylist(), table.column("split").to_pylist())).items()}))),
            ("split", _counted(_values(table, "split"))),
            ("created", _cell(meta.get("created_at", "unknown"))),
            ("run id", f"`{meta.get('run_id', 'unknown')}`")]
    for key in ("job", "version", "previous"):
        if meta.get(key) is not None:
            rows.append((f"refresh {key}", _cell(meta[key])))
    return rows


def _table(rows: list[tuple[str, str]], head: tuple[str, str]) -> str:
    lines = [f"| {head[0]} | {head[1]} |", "|---|---|"]
    return "\n".join(lines + [f"| {k} | {v} |" for k, v in rows])


def dataset_card(table: pa.Table, meta: dict[str, Any], path: Path, where: str) -> str:
    """The README.md of an export: YAML front matter, then provenance, build report and how to load
    (from ``where``: the hub repo id, or the export folder's name). No machine path is written."""
    front = card_metadata(table, meta, path)
    task = _task(table, path, meta)
    modes = sorted(_values(table, "source"))
    problems = len(set(table.column("problem_id").to_pylist()))
    report = meta.get("report") or {}
    sections = [
        f"---\n{yaml.safe_dump(front, sort_keys=False, allow_unicode=True)}---",
        f"# {front['pretty_name']}",
        f"{table.num_rows} shots for {problems} {task.title} problems, built with "
        f"manyshot for many-shot in-context learning (Agarwal et al. 2024). "
        + " ".join(f"`{m}`: {MODES.get(m, 'shots of this source')}." for m in modes),
        "## How to load",
        f"```python\nfrom datasets import load_dataset\n\nshots = load_dataset(\"{where}\", split=\"train\")"
        + ("  # the folder holding this README" if "/" not in where else "") + "\n```\n\n"
        "The bank-level metadata (key configuration, build report, provenance) is also in the Parquet file's "
        "key-value metadata:\n\n"
        f"```python\nimport json\nimport pyarrow.parquet as pq\n\nmeta = pq.read_schema(\"{DATA_FILE}\").metadata\n"
        "report = json.loads(meta[b\"report\"])\n```",
        "## Provenance",
        _table(_provenance(table, meta, path), ("field", "value")),
        "## Build report",
        _table([(_cell(k), _cell(public(v))) for k, v in report.items()], ("metric", "value"))
        if report else "No build report was recorded in this bank.",
        "## Bank key configuration",
        "Everything that changes the bank's content; the bank file's key is a hash of it.\n\n"
        f"```json\n{json.dumps(public(meta.get('config', {})), indent=2, sort_keys=True, default=str)}\n```",
        "## Columns",
        "\n".join(f"- `{f.name}`: {f.type}" for f in table.schema),
        "## License",
        f"`{front['license']}`, the license of the source dataset. {task.license_note} "
        "Model-written rationales and problems are subject to the generating model's terms.",
    ]
    return "\n\n".join(sections) + "\n"


def _check_destination(dest: Path, force: bool) -> None:
    if not dest.exists():
        return
    if not dest.is_dir():
        raise ExportError(f"{dest} exists and is not a folder")
    entries = sorted(p.name for p in dest.iterdir())
    if not entries:
        return
    if not force:
        raise ExportError(f"{dest} is not empty; pass --force to replace a previous export there")
    unexpected = [e for e in entries if e not in EXPORT_ENTRIES]
    if unexpected:
        raise ExportError(f"refusing to replace {dest}: it holds {', '.join(unexpected)}, which an export "
                          f"does not write; choose an empty or new folder")


def export_bank(bank: Path | str, to: Path | str, *, force: bool = False, repo_id: str | None = None) -> Path:
    """Write ``bank`` as a dataset folder at ``to`` (atomically: built in a temp folder, then renamed).

    A non-empty ``to`` is refused unless ``force``, and even then only if it holds nothing but an export."""
    bank, dest = Path(bank), Path(to)
    table, meta = read_bank(bank)
    card = dataset_card(table, meta, bank, repo_id or dest.name)
    _check_destination(dest, force)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    old = tmp.with_suffix(".old")
    try:
        tmp.chmod(0o755)
        (tmp / DATA_FILE).parent.mkdir()
        shutil.copyfile(bank, tmp / DATA_FILE)
        (tmp / "README.md").write_text(card, encoding="utf-8")
        if dest.exists():
            dest.rename(old)  # an empty folder or a previous export (checked above)
        try:
            tmp.rename(dest)
        except OSError:
            if old.exists():
                old.rename(dest)
            raise
    finally:
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover)
    return dest


def _hub_endpoint() -> str:
    from huggingface_hub import constants

    return os.environ.get("HF_ENDPOINT", constants.ENDPOINT).rstrip("/")


def _check_reachable(endpoint: str, folder: Path, repo_id: str) -> None:
    keep = f"the export stays at {folder}"
    if any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        raise ExportError(f"cannot push to the Hugging Face hub: HF_HUB_OFFLINE is set; {keep}")
    url = urlsplit(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=HUB_TIMEOUT_S).close()
    except OSError as exc:
        raise ExportError(f"cannot push to the Hugging Face hub: {endpoint} is unreachable ({exc}); {keep}; "
                          f"upload it later with `hf upload {repo_id} {folder} --repo-type dataset`") from exc


def push_to_hub(folder: Path | str, repo_id: str, *, private: bool = False, token: str | bool | None = None) -> str:
    """Upload an export folder as the dataset repo ``repo_id`` (created if missing); return the commit URL.

    The endpoint (``HF_ENDPOINT`` or huggingface.co) is probed first with a short timeout, so a machine
    without network fails at once; hub errors (no token, no permission) are reported with the repo id.
    ``token=None`` uses huggingface_hub's own lookup (``HF_TOKEN`` or ``hf auth login``), False sends none."""
    import httpx2  # the HTTP client huggingface_hub raises transport errors from
    from huggingface_hub import HfApi

    folder = Path(folder)
    endpoint = _hub_endpoint()
    _check_reachable(endpoint, folder, repo_id)
    api = HfApi(endpoint=endpoint, token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset",
                                   commit_message=f"manyshot bank export ({folder.name})")
    except (OSError, httpx2.HTTPError) as exc:
        detail = " ".join(str(exc).split())  # hub errors span lines (status, docs link, server message)
        raise ExportError(f"pushing {folder} to dataset repo {repo_id} at {endpoint} failed: {detail}; "
                          f"the export stays at {folder}") from exc
    return str(commit.commit_url)


def export_command(bank: str, to: str, *, force: bool, repo_id: str | None, private: bool) -> None:
    """``manyshot bank export``: print the folder, then the hub commit when pushing."""
    dest = export_bank(bank, to, force=force, repo_id=repo_id)
    print(f"exported {bank} to {dest}")
    if repo_id:
        print(f"pushed to {push_to_hub(dest, repo_id, private=private)}")
