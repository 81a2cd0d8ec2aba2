"""The bank flow: shot sources, reinforcement rounds, generated queries, refresh, the build report.

The public names (``from flows.build import build_bank, BuildSpec, Selection, Rounds``) are imported on first use,
so importing one module of this package (a Dask worker's ``flows.build.rounds``) does not import the flow.
"""
import importlib
from typing import Any

PUBLIC = {"build_bank": "flows.build.flow", "sharded": "flows.build.flow", "BuildSpec": "flows.core.specs",
          "Selection": "flows.core.specs", "Rounds": "flows.core.specs", "BuildError": "flows.core.specs"}
__all__ = list(PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(PUBLIC[name]), name)
