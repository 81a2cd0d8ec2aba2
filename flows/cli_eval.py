"""``manyshot eval``'s config file and output pointers.

``--config eval.toml`` holds the keys of an ablation spec's ``[[evals]]`` entry (all of
:data:`flows.config.EVAL_KEYS`) plus the model settings (:data:`flows.cli_options.MODEL_SETTINGS`), at the top level;
flags given on the command line override the file's values. Relative bank paths and task files in the file are
read from the file's folder.

After a finished evaluation the eval root (``--out``) gets ``latest``, a relative symlink to the run folder, and,
with ``--name NAME``, a symlink ``NAME`` to it as well, beside the ``<task>-<key>`` folders.
"""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Mapping

from flows.cli_options import MODEL_SETTINGS
from flows.config import EVAL_KEYS, ConfigError

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
