"""The eval flow: many-shot prompts, shot selection, shot counts, embeddings, metrics, results.

The public names (``from flows.evaluate import evaluate, EvalSpec``) are imported on first use, so the report's
readers of prompts and selections do not import the flow (and Prefect).
"""
import importlib
from typing import Any

PUBLIC = {"evaluate": "flows.evaluate.flow", "EvalSpec": "flows.core.specs", "EvalError": "flows.core.specs",
          "EvalResult": "flows.evaluate.results"}
__all__ = list(PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(PUBLIC[name]), name)
