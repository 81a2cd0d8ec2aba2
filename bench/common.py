"""What the benchmarks share: an offline, telemetry-free environment, a stage clock, and a load probe.

Import it before prefect, vllm or datasets: the environment must be set before they read it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="manyshot-bench-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
os.environ.setdefault("MANYSHOT_DATA_DIR", str((ROOT.parent / "shared" / "data").resolve()))


class Clock:
    """Seconds and calls per category, plus per-engine-call records; thread-safe, so Prefect task
    threads can report."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.engine_calls: list[dict] = []
        self._lock = threading.Lock()

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds
            self.calls[name] = self.calls.get(name, 0) + 1

    def reset(self) -> None:
        with self._lock:
            self.seconds.clear()
            self.calls.clear()
            self.engine_calls.clear()

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - t0)
        timed.__wrapped__ = fn
        return timed


CLOCK = Clock()


def ablation_running() -> bool:
    """Whether a ``manyshot ablate`` job shares the machine (recorded next to every engine benchmark)."""
    return subprocess.run(["pgrep", "-f", "manyshot ablate"], capture_output=True).returncode == 0
