"""Task files shipped inside the package (``flows/core/taskfiles/<group>/<task>.toml``), addressed as
``<group>/<task>`` (``--task bbh/word_sorting``). Their data paths resolve against the data folder
(``[data] root = "data_dir"``), so the same definition and the same keys hold on every machine."""
from __future__ import annotations

import re
from pathlib import Path

PACKAGED = Path(__file__).parent / "taskfiles"
_REF = re.compile(r"[a-z0-9_]+/[A-Za-z0-9_.-]+")


def packaged_task_file(ref: str) -> Path | None:
    """The shipped task file ``ref`` (``group/task``, no ``.toml``) names, or None."""
    if not _REF.fullmatch(ref):
        return None
    path = PACKAGED / f"{ref}.toml"
    return path if path.is_file() else None


def packaged_refs() -> list[tuple[str, Path]]:
    """Every shipped task file as (``group/task``, path), sorted."""
    return sorted((f"{p.parent.name}/{p.stem}", p) for p in PACKAGED.glob("*/*.toml"))
