"""How much the CLI logs, and where: ``--log-level`` and ``--quiet`` (:func:`configure`, before Prefect is imported,
then :func:`apply` once it is).

Levels reach manyshot's loggers (``flows``, ``generators``, ``verifiers``), Prefect's (``PREFECT_LOGGING_LEVEL``,
which worker processes inherit too) and Python warnings (torch's, transformers'), which become log records of
``py.warnings`` so that they follow the level and go where the log lines go: above the live progress display
(:mod:`flows.runtime.progress_rich`), not into it. Other libraries log from WARNING up (ERROR with ``--quiet``),
vLLM's engine internals only at DEBUG. ``--quiet`` is ERROR with no progress display: results and errors only.
"""
from __future__ import annotations

import logging
import os

OWN_LOGGERS = ("flows", "generators", "verifiers", "prefect")


def configure(level: str, quiet: bool) -> str:
    """Set the environment for ``level`` (``quiet`` wins: ERROR, no progress); return the level in force."""
    level = "ERROR" if quiet else level
    os.environ["PREFECT_LOGGING_LEVEL"] = level
    # Prefect's temporary server is another process on the same terminal: its lines cannot go above the display.
    os.environ["PREFECT_SERVER_LOGGING_LEVEL"] = "DEBUG" if level == "DEBUG" else "ERROR"
    if level == "DEBUG":
        os.environ["VLLM_LOGGING_LEVEL"] = "DEBUG"
    if quiet:
        os.environ["MANYSHOT_PROGRESS"] = "0"
    logging.captureWarnings(True)
    return level


def apply(level: str) -> None:
    """Give the loggers ``level`` (after Prefect has configured logging, on import)."""
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
    logging.getLogger().setLevel(level if level in ("DEBUG", "ERROR") else "WARNING")
