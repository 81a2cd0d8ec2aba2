"""Which failed Prefect task runs to retry: model or server errors and I/O, never logic errors."""
from __future__ import annotations

from generators import GenerationError


def retry_model_errors(task_, task_run, state) -> bool:
    """Retry only failures a retry can fix: model or server errors and I/O, never logic errors."""
    try:
        state.result()
    except (GenerationError, OSError):
        return True
    except Exception:  # noqa: BLE001 - any other failure is a bug or bad input: do not retry it
        return False
    return False
