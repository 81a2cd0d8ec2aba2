"""What the CLI reports as one ``manyshot: error: ...`` line (exit codes: :mod:`flows.cli_types`), never with a
traceback.

Errors that mean bad input, an unusable model or an unwritable folder are reported as that one line: every layer
of flows raises a subclass of :class:`flows.core.errors.UserError` for these, the model backends raise their own.
Prefect's log records of them lose their traceback unless ``--debug`` is given (:func:`quiet_prefect_tracebacks`).
A traceback means a bug in manyshot.
"""
import logging
from typing import Callable

from flows.core.errors import UserError
from generators.base import BadRequestError, GenerationError
from generators.models import ModelNotAvailableError


class UsageError(ValueError):
    """Options that do not go together, found after parsing (exit :data:`flows.cli_types.EXIT_USAGE`)."""


class OutputError(ValueError):
    """An output folder or file that cannot be written; the message names the option and the path."""


USER_ERRORS = (UserError, BadRequestError, GenerationError, ModelNotAvailableError, OutputError, UsageError)
#: What the CLI reports as one line: the errors above, and the operating system's (a file or folder it cannot use).
REPORTED = (*USER_ERRORS, OSError)


def message(exc: BaseException) -> str:
    """The text after ``manyshot: error:``; an OS error names its file first."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


class _DropTraceback(logging.Filter):
    """Keep the log line of a reported error, without its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], REPORTED):
            record.exc_info, record.exc_text = None, None
        return True


_DROP_TRACEBACK = _DropTraceback()
_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


def quiet_prefect_tracebacks() -> Callable[[], None]:
    """Prefect logs a failed flow or task run with its traceback; for a reported error keep only the line.
    Returns the undo function."""
    for name in _RUN_LOGGERS:
        logging.getLogger(name).addFilter(_DROP_TRACEBACK)

    def restore() -> None:
        for name in _RUN_LOGGERS:
            logging.getLogger(name).removeFilter(_DROP_TRACEBACK)
    return restore
