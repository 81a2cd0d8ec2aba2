"""Benchmark verifiers/ against math-verify on the labelled table and the hostile set.

Usage (from the repository root)::

    .venv/bin/python bench/verify.py [--mv-case-timeout 20] [--rounds 3]

Prints accuracy, false positives and false negatives per category for both checkers, the
hostile-input outcome, and cases/s measured in this one run: ``verify()`` called once per pair
in a loop, ``verify_many`` (one worker, and the full pool), math-verify called once per pair in
one warm process (its import and process start not counted), and the seconds of the first
symbolic call (worker start). Each verifiers timing starts from freshly started, warm workers; the
timings run in interleaved rounds and the median round is reported (all rounds are in the JSON). Writes the same to bench/results/verify.json. math-verify runs in a
child process (its own signal-based timeouts work there); a case that hangs past
--mv-case-timeout seconds kills the child, counts as a failure, and the run resumes after it.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from verifier_cases import CASES
from verifier_hostile import HOSTILE  # noqa: E402

import verifiers  # noqa: E402
from verifiers import pool  # noqa: E402
from verifiers.extract import is_response  # noqa: E402

OURS_TIMEOUT_S = 5.0
SETTLE_S = 2.0


def _mv_child(path: str, start: int) -> None:
    """Child mode: run math-verify on cases[start:] and print one JSON line per case."""
    from math_verify import parse, verify

    cases = json.loads(Path(path).read_text())
    for i in range(start, len(cases)):
        gold, pred = cases[i][1], cases[i][2]
        t0 = time.perf_counter()
        error = None
        try:
            gold_parsed = parse(f"${gold}$")
            pred_parsed = parse(pred if is_response(pred) else f"${pred}$")
            correct = bool(verify(gold_parsed, pred_parsed))
        except Exception as exc:  # counted as a failure of math-verify, reported in the table
            correct, error = False, f"{type(exc).__name__}: {str(exc)[:80]}"
        print(json.dumps({"i": i, "correct": correct, "error": error,
                          "seconds": time.perf_counter() - t0}), flush=True)


def run_math_verify(cases: list, case_timeout_s: float, tmp: Path) -> list[dict]:
    """math-verify results for ``cases``, surviving hangs and crashes of the child."""
    tmp.write_text(json.dumps(cases))
    results: dict[int, dict] = {}
    start = 0
    while start < len(cases):
        child = subprocess.Popen(
            [sys.executable, __file__, "--mv-child", str(tmp), str(start)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1,
        )
        buffer = ""
        while True:
            ready, _, _ = select.select([child.stdout], [], [], case_timeout_s)
            if not ready:
                child.kill()
                results[start] = {"i": start, "correct": False, "error": "hang", "seconds": case_timeout_s}
                start += 1
                break
            line = child.stdout.readline()
            if not line:
                child.wait()
                if start < len(cases):
                    results[start] = {"i": start, "correct": False, "error": "crash", "seconds": 0.0}
                    start += 1
                break
            buffer = json.loads(line)
            results[buffer["i"]] = buffer
            start = buffer["i"] + 1
        child.stdout.close()
        child.wait()
    return [results[i] for i in range(len(cases))]


def run_ours(cases: list, workers: int, timeout_s: float = OURS_TIMEOUT_S) -> tuple[list, float]:
    """Verdicts in case order and the wall-clock seconds, tasks batched separately."""
    verdicts: dict[int, verifiers.Verdict] = {}
    start = time.perf_counter()
    for task in ("math", "number"):
        index = [i for i, c in enumerate(cases) if c[3] == task]
        pairs = [(cases[i][1], cases[i][2]) for i in index]
        for i, verdict in zip(index, verifiers.verify_many(pairs, fmt=task, workers=workers, timeout_s=timeout_s)):
            verdicts[i] = verdict
    return [verdicts[i] for i in range(len(cases))], time.perf_counter() - start


def run_single(cases: list, timeout_s: float = OURS_TIMEOUT_S) -> tuple[list, float]:
    """Verdicts of ``verify()`` called once per pair, and the wall-clock seconds."""
    start = time.perf_counter()
    verdicts = [verifiers.verify(c[1], c[2], c[3], timeout_s=timeout_s) for c in cases]
    return verdicts, time.perf_counter() - start


def fresh_pool() -> float:
    """Restart the workers (empty parse caches); the seconds until they are ready. Then wait
    SETTLE_S, in which idle workers warm their LaTeX parser (verifiers.worker), so that a timing
    measures warm workers and not that one-time warm-up running beside it."""
    pool.shutdown()
    start = time.perf_counter()
    pool.get_pool().warm()
    ready_s = time.perf_counter() - start
    time.sleep(SETTLE_S)
    return ready_s


def tally(cases: list, decisions: list[bool]) -> dict:
    rows: dict[str, dict] = defaultdict(lambda: {"n": 0, "correct": 0, "fp": 0, "fn": 0})
    for case, decided in zip(cases, decisions):
        for key in (case[0], "TOTAL"):
            row = rows[key]
            row["n"] += 1
            row["correct"] += decided == case[4]
            row["fp"] += decided and not case[4]
            row["fn"] += case[4] and not decided
    for row in rows.values():
        row["accuracy"] = round(row["correct"] / row["n"], 4)
    return dict(rows)


def print_table(ours: dict, mv: dict) -> None:
    header = f"{'category':<14}{'n':>5} | {'ours acc':>8}{'FP':>4}{'FN':>4} | {'m-v acc':>8}{'FP':>4}{'FN':>4}"
    print(header)
    print("-" * len(header))
    for key in sorted(ours, key=lambda k: (k == "TOTAL", k)):
        o, m = ours[key], mv[key]
        print(f"{key:<14}{o['n']:>5} | {o['accuracy']:>8.3f}{o['fp']:>4}{o['fn']:>4} | "
              f"{m['accuracy']:>8.3f}{m['fp']:>4}{m['fn']:>4}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mv-case-timeout", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds; the median is reported")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "verify.json")
    parser.add_argument("--mv-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mv_child:
        _mv_child(args.mv_child[0], int(args.mv_child[1]))
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    first_start = time.perf_counter()
    verifiers.verify("1", r"\sqrt{1}")  # the first symbolic call starts a worker
    first_call_s = time.perf_counter() - first_start
    hostile_cases = [(name, g, p, task, e) for name, g, p, task, e in HOSTILE]
    rounds: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="verify-bench-") as scratch:
        tmp = Path(scratch) / "cases.json"
        for _ in range(args.rounds):  # interleaved, so that every method sees the same machine load
            fresh_pool()  # fresh workers (and empty parse caches) for each timing
            single_verdicts, seconds = run_single(CASES)
            rounds["single"].append(seconds)
            fresh_pool()
            one_verdicts, seconds = run_ours(CASES, workers=1)
            rounds["one"].append(seconds)
            fresh_pool()
            pool_verdicts, seconds = run_ours(CASES, workers=cores)
            rounds["pool"].append(seconds)
            assert [v.correct for v in one_verdicts] == [v.correct for v in pool_verdicts]
            assert [v.correct for v in single_verdicts] == [v.correct for v in pool_verdicts]
            mv_results = run_math_verify(CASES, args.mv_case_timeout, tmp)
            rounds["mv"].append(sum(r["seconds"] for r in mv_results))
        hostile_start = time.perf_counter()
        hostile_verdicts, _ = run_ours(hostile_cases, workers=cores)
        hostile_s = time.perf_counter() - hostile_start
        mv_hostile = run_math_verify(hostile_cases, args.mv_case_timeout, tmp)

    ours_table = tally(CASES, [v.correct for v in pool_verdicts])
    mv_table = tally(CASES, [r["correct"] for r in mv_results])
    single_s, one_s, pool_s, mv_seconds = (statistics.median(rounds[k]) for k in ("single", "one", "pool", "mv"))
    throughput = {
        "rounds": args.rounds,
        "per_round_cases_per_s": {k: [round(len(CASES) / x, 1) for x in v] for k, v in rounds.items()},
        "ours_verify_loop_cases_per_s": round(len(CASES) / single_s, 1),
        "ours_one_worker_cases_per_s": round(len(CASES) / one_s, 1),
        "ours_pool_cases_per_s": round(len(CASES) / pool_s, 1),
        "ours_pool_cases_per_s_per_core": round(len(CASES) / pool_s / cores, 1),
        "math_verify_one_process_cases_per_s": round(len(CASES) / mv_seconds, 1),
        "verify_loop_over_math_verify": round(mv_seconds / single_s, 2),
        "verify_many_pool_over_math_verify": round(mv_seconds / pool_s, 2),
        "first_symbolic_call_s": round(first_call_s, 2),
        "cores": cores,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }

    def hostile_summary(decisions: list[bool], errors: list, seconds: list) -> dict:
        wrong = [c[0] for c, d in zip(hostile_cases, decisions) if d != c[4]]
        return {
            "n": len(hostile_cases),
            "wrong_decisions": wrong,
            "false_accepts": [c[0] for c, d in zip(hostile_cases, decisions) if d and not c[4]],
            "hangs": [c[0] for c, e in zip(hostile_cases, errors) if e == "hang"],
            "crashes": [c[0] for c, e in zip(hostile_cases, errors) if e == "crash"],
            "max_case_seconds": round(max(seconds), 2),
        }

    ours_hostile = hostile_summary([v.correct for v in hostile_verdicts], [v.error for v in hostile_verdicts],
                                   [hostile_s])
    ours_hostile["total_seconds"] = round(hostile_s, 2)
    mv_hostile_summary = hostile_summary([r["correct"] for r in mv_hostile], [r["error"] for r in mv_hostile],
                                         [r["seconds"] for r in mv_hostile])

    print(f"verifiers {verifiers.VERSION} vs math-verify on {len(CASES)} labelled cases\n")
    print_table(ours_table, mv_table)
    print("\nthroughput (cases/s):")
    for key, value in throughput.items():
        print(f"  {key:<40}{value}")
    print(f"\nhostile inputs ({len(hostile_cases)}):")
    for label, summary in (("verifiers", ours_hostile), ("math-verify", mv_hostile_summary)):
        print(f"  {label:<12} wrong={len(summary['wrong_decisions'])} false_accepts={summary['false_accepts']} "
              f"hangs={summary['hangs']} crashes={summary['crashes']}")
    print(f"  verifiers hostile batch wall-clock: {ours_hostile['total_seconds']} s")

    disagreements = [
        {"category": c[0], "gold": c[1], "pred": c[2][:200], "task": c[3], "expected": c[4],
         "ours": v.correct, "ours_method": v.method, "ours_error": v.error, "math_verify": r["correct"]}
        for c, v, r in zip(CASES, pool_verdicts, mv_results) if v.correct != c[4] or r["correct"] != c[4]
    ]
    args.out.write_text(json.dumps({
        "verifiers_version": verifiers.VERSION,
        "cases": len(CASES),
        "ours": ours_table,
        "math_verify": mv_table,
        "throughput": throughput,
        "hostile": {"verifiers": ours_hostile, "math_verify": mv_hostile_summary},
        "misjudged": disagreements,
    }, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
