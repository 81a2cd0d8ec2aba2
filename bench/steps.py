"""Benchmark ``verifiers.check_steps`` on labelled GSM8K reference solutions, and its speed.

Usage (from the repository root)::

    MANYSHOT_DATA_DIR=../shared/data .venv/bin/python bench/steps.py [--n 1000] [--seeds 0,1,2]

For each seed, ``tests/step_cases.labelled_set`` draws ``n`` clean GSM8K train solutions (annotations
stripped) and plants one wrong step in each (alternately a changed result and a changed operand, final
answer untouched). Prints false alarms on the clean ones, the share of planted ones flagged (and
flagged at the planted number), and then every clean train solution once. Speed: rationales per CPU
second of ``check_steps`` in this process (one thread, one core) over every clean reference rationale and
over texts of five of them joined (about the length of a model rationale), next to ``verifiers.verify``
of the same rationales' final answers in the same run (``verify_many`` with one worker; its in-process
time only). Writes bench/results/steps.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import step_cases  # noqa: E402

import verifiers  # noqa: E402


def score(cases: list[step_cases.Case]) -> dict:
    rows: dict[str, dict] = {}
    for case in cases:
        report = verifiers.check_steps(case.rationale)
        row = rows.setdefault(case.kind, {"n": 0, "flagged": 0, "located": 0, "claims": 0})
        row["n"] += 1
        row["claims"] += report.checked
        row["flagged"] += report.wrong > 0
        row["located"] += bool(case.span) and any(w.start <= case.span[0] and case.span[1] <= w.end
                                                  for w in report.wrong_claims)
    for row in rows.values():
        row["rate"] = round(row["flagged"] / row["n"], 4)
    return rows


def _rate(fn, items: list, repeats: int) -> float:
    """Items per CPU second of this process (CPU time, so a shared machine disturbs it less than wall time)."""
    start = time.process_time()
    for _ in range(repeats):
        fn(items)
    return len(items) * repeats / (time.process_time() - start)


def throughput(rationales: list[str], answers: list[str], repeats: int) -> dict:
    joined = ["\n".join(rationales[i:i + 5]) for i in range(0, len(rationales) - 4, 5)]  # model-length texts
    pairs = list(zip(answers, rationales))
    verifiers.verify_many(pairs[:50], fmt="number")  # start the pool outside the timing
    check = lambda texts: [verifiers.check_steps(t) for t in texts]  # noqa: E731
    steps = _rate(check, rationales, repeats)
    verify = _rate(lambda p: verifiers.verify_many(p, fmt="number", workers=1), pairs, repeats)
    steps_long = _rate(check, joined, repeats)
    return {"check_steps_per_cpu_s": round(steps, 1), "verify_per_cpu_s_same_texts": round(verify, 1),
            "check_steps_over_verify_time": round(verify / steps, 3),
            "mean_chars": round(sum(map(len, rationales)) / len(rationales), 1),
            "check_steps_per_cpu_s_5_joined": round(steps_long, 1),
            "mean_chars_5_joined": round(sum(map(len, joined)) / len(joined), 1),
            "load_average_1min": os.getloadavg()[0], "cores": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="planted solutions per seed")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "steps.json")
    args = parser.parse_args()
    solutions = step_cases.load_solutions("train")
    results: dict = {"seeds": {}}
    print(f"{'set':<14}{'kind':<9}{'n':>6}{'flagged':>9}{'rate':>8}{'located':>9}{'claims':>8}")
    for seed in [int(s) for s in args.seeds.split(",")]:
        rows = score(step_cases.labelled_set(args.n, seed, solutions))
        results["seeds"][seed] = rows
        for kind, row in sorted(rows.items()):
            print(f"{'seed ' + str(seed):<14}{kind:<9}{row['n']:>6}{row['flagged']:>9}{row['rate']:>8.2%}"
                  f"{row['located']:>9}{row['claims']:>8}")
    clean = [step_cases.rationale(s) for s in solutions if step_cases.clean_steps(s)]
    answers = [s.rpartition("####")[2].strip() for s in solutions if step_cases.clean_steps(s)]
    rows = score([step_cases.Case("clean", i, text) for i, text in enumerate(clean)])
    results["all_clean_train"] = rows["clean"]
    row = rows["clean"]
    print(f"{'all train':<14}{'clean':<9}{row['n']:>6}{row['flagged']:>9}{row['rate']:>8.2%}{'':>9}{row['claims']:>8}")
    results["throughput"] = throughput(clean, answers, args.repeats)
    print("\nspeed (one core, one thread; the machine may be shared):")
    for key, value in results["throughput"].items():
        print(f"  {key:<32}{value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
