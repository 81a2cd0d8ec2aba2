"""``manyshot eval``: its options, its config file, the spec they make, and the output pointers of a run.

``--config eval.toml`` holds the keys of an ablation spec's ``[[evals]]`` entry (all of
:data:`flows.config.EVAL_KEYS`) plus the model settings (:data:`flows.cli_options.MODEL_SETTINGS`), at the top level;
flags given on the command line override the file's values. Relative bank paths and task files in the file are
read from the file's folder.

After a finished evaluation the eval root (``--out``) gets ``latest``, a relative symlink to the run folder, and,
with ``--name NAME``, a symlink ``NAME`` to it as well, beside the ``<task>-<key>`` folders.
"""
from __future__ import annotations

import argparse
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Mapping

from flows.cli_options import MODEL_SETTINGS, S, common, endpoint_generator
from flows.cli_types import POSITIVE, shot_counts, temperature, words
from flows.config import EVAL_KEYS, ConfigError, eval_spec

LATEST = "latest"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def read_config(path: Path | str) -> dict[str, Any]:
    """The keys of an eval config file, bank paths and task files made relative to the current folder."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            entry = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(entry) - EVAL_KEYS - set(MODEL_SETTINGS))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; allowed: {sorted(EVAL_KEYS | set(MODEL_SETTINGS))}")
    if isinstance(entry.get("banks"), str):
        entry["banks"] = [entry["banks"]]
    entry["banks"] = [_beside(path, bank) for bank in entry.get("banks", [])]
    if str(entry.get("task", "")).endswith(".toml"):
        entry["task"] = _beside(path, entry["task"])
    if not entry["banks"]:
        del entry["banks"]
    return entry


def _beside(config: Path, value: str) -> str:
    return value if Path(value).is_absolute() else os.path.normpath(config.parent / value)


def merged(file_entry: Mapping[str, Any], flags: Mapping[str, Any]) -> dict[str, Any]:
    """The file's keys, overridden by the flags that were given (options left out are absent from ``flags``)."""
    return {**file_entry, **{k: v for k, v in flags.items() if k in EVAL_KEYS or k in MODEL_SETTINGS}}


def apply_model_settings(entry: Mapping[str, Any]) -> None:
    """Set the environment variables the in-process engine reads from the model settings in ``entry``."""
    for key, variable in MODEL_SETTINGS.items():
        if key in entry:
            os.environ[variable] = str(entry[key])


def check_name(name: str) -> str:
    """A run name: letters, digits, ``.``, ``_``, ``-``; not ``latest``."""
    if not NAME.fullmatch(name) or name == LATEST:
        raise ConfigError(f"--name {name!r}: use letters, digits, '.', '_' and '-' (not 'latest'), at most 100")
    return name


def _link(root: Path, name: str, target: Path) -> Path:
    """``root/name`` -> ``target`` (relative), replaced atomically; an entry that is not a symlink is kept."""
    link = root / name
    if link.exists() and not link.is_symlink():
        raise ConfigError(f"{link} exists and is not a link manyshot made; choose another --name")
    tmp = root / f".{name}.link-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target, root), tmp)
    os.replace(tmp, link)
    return link


def link_run(root: Path | str, run_folder: Path | str, name: str | None = None) -> list[Path]:
    """Point ``root/latest`` (and ``root/NAME``) at a finished run folder; return the links."""
    root, run_folder = Path(root), Path(run_folder)
    links = [_link(root, check_name(name), run_folder)] if name else []
    return links + [_link(root, LATEST, run_folder)]


def _run_name(text: str) -> str:
    try:
        return check_name(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_eval_command(sub) -> None:
    """The ``eval`` subcommand's parser, under ``sub`` (the command line's subparsers)."""
    e = sub.add_parser("eval", help="many-shot evaluation of banks")
    e.add_argument("--config", default=None, metavar="TOML",
                   help="eval config file: the keys of an ablation spec's [[evals]] entry (task, banks, shots, ...) "
                   "and model settings (max_model_len, kv_cache_gib, block_size, dtype, tensor_parallel); flags "
                   "override it")
    common(e, config=True)
    e.add_argument("--bank", dest="banks", type=words, default=S, help="bank path(s), comma-separated")
    e.add_argument("--shots", type=shot_counts, default=S,
                   help="shot counts, e.g. 0,4,16,64,max (max: the largest K that fits the context, per bank and seed)")
    e.add_argument("--seeds", type=POSITIVE, default=S, help="shot draws per bank and K")
    e.add_argument("--limit", type=POSITIVE, default=S, help="test questions evaluated")
    e.add_argument("--samples", type=POSITIVE, default=S, help="samples per question (majority vote)")
    e.add_argument("--temperature", type=temperature, default=S)
    e.add_argument("--max-tokens", type=POSITIVE, default=S, help="tokens per answer")
    e.add_argument("--exclude-contaminated", action="store_true", default=S,
                   help="drop the shots that are test questions of this eval (else such a bank is an error)")
    e.add_argument("--select", type=words, default=S,
                   help="shot selection, comma-separated: random, similar, diverse, complex, hybrid (default random; "
                   "hybridM: a shared random block, then each question's M nearest shots; hybrid is hybrid4)")
    e.add_argument("--orders", type=POSITIVE, default=S,
                   help="run each cell in N orders of the same K shots and report the accuracy spread (default 1)")
    e.add_argument("--embedder", choices=("auto", "minilm", "tfidf"), default=S,
                   help="question embeddings for --select similar/diverse/hybrid (auto: MiniLM when installed, else "
                   "TF-IDF)")
    e.add_argument("--reference", default=S, metavar="LABEL",
                   help="bank label to show paired differences against (default: the ground-truth bank, else the "
                   "first)")
    e.add_argument("--out", default=None, metavar="DIR",
                   help="the root of eval folders: results land in DIR/TASK-KEY/runs/RUN-KEY, and DIR/latest points "
                   "at the last finished run (default runs/evals)")
    e.add_argument("--name", type=_run_name, default=None,
                   help="also name the run folder: DIR/NAME, a link beside the TASK-KEY folders")


def eval_entry(args) -> dict:
    """The eval's keys: the --config file's, overridden by the flags given."""
    return merged(read_config(args.config) if args.config else {}, vars(args))


def spec_from_args(args):
    """The eval spec of the command line (and its --config file); the task resolved (a task file registered)."""
    from flows.core.taskfile import resolve
    from flows.errors import UsageError

    entry = eval_entry(args)
    if "task" not in entry:
        raise UsageError("manyshot eval: give --task, or a task key in the --config file")
    entry["task"] = resolve(entry["task"], allow_unparsed=args.allow_unparsed)
    return eval_spec({k: v for k, v in entry.items() if k in EVAL_KEYS}, args.config or "manyshot eval")


def run_eval(args) -> str:
    """Run the evaluation, point ``latest`` (and ``--name``) at its run folder and return the folder."""
    from flows.evaluate import evaluate
    from flows.evaluate.flow import DEFAULT_ROOT

    spec = spec_from_args(args)
    folder = evaluate(spec, data_dir=args.data_dir, out=args.out, generator=endpoint_generator(args, spec.model)).folder
    link_run(args.out or DEFAULT_ROOT, folder, args.name)
    return str(folder)
