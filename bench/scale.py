"""Scale-out benchmark: a fixed reinforced GSM8K build on 1 vs 2 Dask workers, with fake models that have
a realistic per-call latency (real vLLM servers are too heavy for a 2-core box).

    .venv/bin/python bench/scale.py [--limit 48] [--chunk-size 4] [--latency 0.75]

Runs, in one process and on the same problems: the serial ``build_bank``; ``build_bank`` sharded
(``flows.build.flow.sharded``) on a local Dask cluster with 1 worker; and with 2 workers. Clusters are started (and
their workers' imports done) before the clock starts. Checks that every bank has the same rows (ignoring created_at and run_id), prints a table, writes bench/results/scale.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
from common import ROOT  # noqa: E402  (sets the environment first)


_ANSWERS: dict[str, dict[str, str]] = {}


class Solver:
    """Answers a GSM8K prompt correctly for even samples, wrongly for odd ones. Holds only the data dir (the
    answer table is loaded where it runs), so it pickles small and stays small in Prefect's parameter records."""

    def __init__(self, data_dir: str):
        self.data_dir = data_dir

    def __call__(self, prompt, sample, rng):
        if self.data_dir not in _ANSWERS:
            from flows.core.data import load_problems

            _ANSWERS[self.data_dir] = {p.question: p.answer for p in load_problems("gsm8k", "train", self.data_dir)}
        gold = _ANSWERS[self.data_dir].get(prompt[-1]["content"])
        if gold is None or sample % 2:
            return f"Guessing.\nThe answer is {rng.randrange(1000)}x"
        return f"Step {sample}: compute.\nThe answer is {gold}"


def _warm(data_dir: str) -> None:
    import flows.build.flow  # noqa: F401  (prefect, verifiers, sympy: seconds of imports per fresh worker)
    import verifiers

    verifiers.verify("4", "The answer is 4", fmt="number")
    Solver(data_dir)([{"role": "user", "content": ""}], 0, random.Random(0))


def content(path: str):
    import pyarrow.parquet as pq

    df = pq.read_table(path).to_pandas().sort_values("shot_id")
    return df.drop(columns=["created_at", "run_id"]).reset_index(drop=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=48)
    parser.add_argument("--chunk-size", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.75, help="seconds per batched model call")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "scale.json"))
    args = parser.parse_args()

    from distributed import LocalCluster
    from prefect.testing.utilities import prefect_test_harness

    from flows.build.flow import build_bank, sharded
    from flows.core.specs import BuildSpec, Rounds, Selection
    from generators.fake import FakeGenerator

    data_dir = os.environ["MANYSHOT_DATA_DIR"]
    spec = BuildSpec(mode="reinforced", selection=Selection(task="gsm8k", limit=args.limit),
                     rounds=Rounds(samples=4, temperature=0.7, retry_temperature=1.0, max_tokens=256, rounds=1),
                     chunk_size=args.chunk_size)
    chunks = -(-args.limit // args.chunk_size)
    solver = Solver(data_dir)
    work = Path(tempfile.mkdtemp(prefix="manyshot-bench-scale-"))
    runs = []
    with prefect_test_harness(server_startup_timeout=120):
        def timed(name, workers, fn):
            gen = FakeGenerator(solver, latency_s=args.latency)
            started = time.perf_counter()
            path = fn(gen, str(work / name))
            seconds = time.perf_counter() - started
            runs.append({"run": name, "workers": workers, "seconds": round(seconds, 2), "path": path})
            print(f"  {name}: {seconds:.2f}s", flush=True)

        timed("serial build_bank", 1, lambda gen, out: build_bank(spec, data_dir=data_dir, out=out, generator=gen))
        for workers in (1, 2):
            started = time.perf_counter()
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            with cluster.get_client() as client:  # warm the workers as a long-lived cluster would be: imports done
                client.run(_warm, data_dir)
            startup = time.perf_counter() - started
            try:
                run = sharded(address=cluster.scheduler_address)
                timed(f"dask, {workers} worker{'s' * (workers > 1)}", workers,
                      lambda gen, out: run(spec, data_dir=data_dir, out=out, generator=gen))
                runs[-1]["cluster_startup_s"] = round(startup, 2)
            finally:
                cluster.close()

    reference = content(runs[0]["path"])
    for r in runs:
        r["identical_to_serial"] = bool(content(r["path"]).equals(reference))
        r["shots"] = len(content(r["path"]))
    one = next(r for r in runs if r["run"] == "dask, 1 worker")
    two = next(r for r in runs if r["run"] == "dask, 2 workers")
    result = {
        "build": {"task": "gsm8k", "mode": "reinforced", "problems": args.limit, "chunk_size": args.chunk_size,
                  "chunks": chunks, "samples": 4, "fake_latency_s_per_call": args.latency},
        "ideal_serial_model_time_s": round(chunks * args.latency, 2),
        "runs": [{k: v for k, v in r.items() if k != "path"} for r in runs],
        "speedup_2_vs_1_workers": round(one["seconds"] / two["seconds"], 2),
        "speedup_2_workers_vs_serial": round(runs[0]["seconds"] / two["seconds"], 2),
        "all_identical": all(r["identical_to_serial"] for r in runs),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    print(f"\n{'run':<20} {'workers':>7} {'seconds':>8} {'shots':>6} {'identical':>9}")
    for r in result["runs"]:
        same = str(r["identical_to_serial"])
        print(f"{r['run']:<20} {r['workers']:>7} {r['seconds']:>8.2f} {r['shots']:>6} {same:>9}")
    print(f"\n{chunks} chunks x {args.latency}s model latency = {result['ideal_serial_model_time_s']}s of model time")
    print(f"speedup 2 vs 1 workers: {result['speedup_2_vs_1_workers']}x; "
          f"2 workers vs serial build_bank: {result['speedup_2_workers_vs_serial']}x; "
          f"identical rows: {result['all_identical']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0 if result["all_identical"] and result["speedup_2_vs_1_workers"] > 1 else 1


if __name__ == "__main__":
    sys.exit(main())
