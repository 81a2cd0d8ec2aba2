"""Bank-build benchmark: the reinforced ``build_bank`` flow against a raw ``vllm.LLM.generate`` call, and the
pipeline's own throughput with a zero-latency fake model.

    .venv/bin/python bench/build.py [--model embedded] [--task gsm8k] [--limit 32] [--samples 4]
                                    [--temperature 0.7] [--max-tokens 256] [--repeats 1] [--fake-problems 10000] [--fake-chunk-size 512]
                                    [--skip-real] [--skip-fake]

Real part: one ``VLLMGenerator`` engine serves both paths. The problems are the build's own selection
(``--task``'s shot pool, seed 0, ``--limit``; a built-in task or a task file such as ``bbh/object_counting``),
prompted with the build's few-shot CoT template; one round of ``--samples`` samples at ``--temperature``. The runs go raw, build, raw (``--repeats 2``: raw, build, raw,
build, raw), with the prefix cache reset before each, so warm-up and drift hit both paths alike.

* raw: ``generator.render(prompt)`` texts straight into the engine's ``LLM.generate`` with
  ``SamplingParams(n, temperature, top_p, max_tokens)`` and the backend's engine-level reseed to the seed
  the build uses for that chunk and round (so both paths sample exactly the same tokens; checked).
* build: ``flows.build.flow.build_bank`` (mode reinforced, fresh output folder each run) with the same engine,
  behind a timing proxy. Overhead = build wall time - time inside ``generate`` - time inside
  ``verifiers.verify_many``: Prefect, data loading, row building, Parquet. Target: throughput (generated
  tokens per wall second) >= 0.9x raw, overhead <= 5% of wall.

Fake part: a temporary data dir whose gsm8k/train.jsonl holds ``--fake-problems`` distinct problems (the
real train + test rows, plus copies with edited question text), built reinforced with a ``FakeGenerator``
that answers every sample correctly at zero latency, with samples=1 and samples=4. Reports problems/s and
samples/s and where the time goes (generate / verify / rows / Parquet / data load / Prefect and the rest).

Prefect runs against a temporary server (``prefect_test_harness``) started and warmed (one small fake build)
before any clock starts; its start-up time is reported apart. Writes bench/results/build.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from common import CLOCK, ROOT, ablation_running  # noqa: E402  (sets the environment first)

THROUGHPUT_TARGET = 0.9  # build tokens/s >= 0.9x raw
OVERHEAD_TARGET = 0.05  # Prefect + Parquet (+ data, rows) <= 5% of build wall time



@contextmanager
def instrumented():
    """Time the pipeline's stages by wrapping module attributes in this process only (no project file changes).

    verify: ``verifiers.verify_many`` (flows.build.rounds calls it through the module); rows: ``reinforce_chunk`` as
    flows.build.sources calls it, minus generate and verify; parquet: ``ChunkStore.put/get/stats`` and ``write_bank``;
    data: ``load_problems`` and ``select`` as flows.build.flow calls them.
    """
    import verifiers
    from flows.runtime import banks as bank
    from flows.build import flow as build
    from flows.build import sources

    patches = [(verifiers, "verify_many", "verify"), (sources, "reinforce_chunk", "reinforce"),
               (bank.ChunkStore, "put", "parquet"), (bank.ChunkStore, "get", "parquet"),
               (bank.ChunkStore, "stats", "parquet"), (bank, "write_bank", "parquet"),
               (build, "load_problems", "data"), (build, "select", "data")]
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in patches]
    for obj, attr, name in patches:
        setattr(obj, attr, CLOCK.wrap(name, getattr(obj, attr)))
    try:
        yield
    finally:
        for obj, attr, fn in saved:
            setattr(obj, attr, fn)


class TimedGenerator:
    """A Generator proxy that adds the time spent in ``generate`` to CLOCK and keeps what it returned."""

    def __init__(self, inner, keep: bool = True):
        self.inner, self.keep = inner, keep
        self.model_id, self.max_model_len, self.chat = inner.model_id, inner.max_model_len, inner.chat
        self.completions: list = []

    def generate(self, prompts, sampling):
        t0 = time.perf_counter()
        try:
            out = self.inner.generate(prompts, sampling)
        finally:
            CLOCK.add("generate", time.perf_counter() - t0)
        if self.keep:
            self.completions += out
        return out

    def count_tokens(self, prompt):
        return self.inner.count_tokens(prompt)


def split(wall: float) -> dict[str, float]:
    """Where a build's wall time went, from CLOCK (seconds, rounded)."""
    s = CLOCK.seconds
    gen, ver, par, data = (s.get(k, 0.0) for k in ("generate", "verify", "parquet", "data"))
    rows = max(0.0, s.get("reinforce", 0.0) - gen - ver)
    rest = wall - gen - ver - rows - par - data
    return {"generate": round(gen, 3), "verify": round(ver, 3), "rows": round(rows, 3), "parquet": round(par, 3),
            "data": round(data, 3), "prefect_and_rest": round(rest, 3)}


# --------------------------------------------------------------------------------------- real part


def real_part(args, data_dir: str, work: Path) -> dict:
    import pyarrow.parquet as pq
    from vllm import SamplingParams

    from flows.build.flow import build_bank
    from flows.core.specs import BuildError, BuildSpec, Rounds, Selection
    from flows.core.data import load_problems, select
    from flows.build.rounds import round_seed, template_prompt
    from flows.core.taskfile import resolve
    from flows.core.tasks import cot_template
    from generators.vllm_backend import VLLMGenerator, reseed

    task = resolve(args.task)
    rounds = Rounds(samples=args.samples, temperature=args.temperature, retry_temperature=1.0,
                    max_tokens=args.max_tokens, rounds=1)
    spec = BuildSpec(mode="reinforced", selection=Selection(task=task, limit=args.limit), model=args.model,
                     rounds=rounds, chunk_size=max(args.limit, 1))  # one chunk: one engine call per path
    problems = select(load_problems(task, "train", data_dir), limit=args.limit, seed=spec.selection.seed)
    make = template_prompt(cot_template(task, spec.few_shot))

    print(f"loading {args.model} ...", flush=True)
    gen = VLLMGenerator(args.model, seed=spec.selection.seed, max_model_len=args.max_model_len)
    llm = gen.engine  # the vllm.LLM the backend drives
    texts = [gen.render(make(p)) for p in problems]
    seed = round_seed(spec.selection.seed, 0, 0)  # the seed reinforce_chunk uses for chunk 0, round 0
    params = SamplingParams(n=rounds.samples, temperature=rounds.temperature, top_p=1.0,
                            max_tokens=rounds.max_tokens)
    prompt_tokens = sum(gen.count_tokens(make(p)) for p in problems)

    # engine warm-up (not timed)
    reseed(llm, 1)
    llm.generate(texts[:4], SamplingParams(n=2, temperature=0.7, max_tokens=16), use_tqdm=False)

    runs, raw_texts = [], None
    order = ["raw", "build"] * args.repeats + ["raw"]
    for i, kind in enumerate(order):
        llm.reset_prefix_cache()
        CLOCK.reset()
        load = os.getloadavg()[0]
        if kind == "raw":
            t0 = time.perf_counter()
            reseed(llm, seed)
            outs = llm.generate(texts, params, use_tqdm=False)
            wall = time.perf_counter() - t0
            samples = [[o.text for o in sorted(r.outputs, key=lambda o: o.index)] for r in outs]
            tokens = sum(len(o.token_ids) for r in outs for o in r.outputs)
            same_ids = all(list(r.prompt_token_ids) == gen.encode(make(p)) for r, p in zip(outs, problems))
            raw_texts = raw_texts or samples
            run = {"path": "raw", "wall_s": wall, "tokens": tokens, "generate_s": wall,
                   "prompt_ids_match_backend": same_ids, "same_samples_as_first_raw": samples == raw_texts}
        else:
            proxy = TimedGenerator(gen)
            out = work / f"build-{i}"
            with instrumented():
                t0 = time.perf_counter()
                try:
                    shots = pq.read_metadata(build_bank(spec, data_dir=data_dir, out=str(out), generator=proxy)).num_rows
                except BuildError as e:  # e.g. embedded-tiny solving nothing: the timing still stands
                    print(f"  build wrote no bank: {e}")
                    shots = 0
                wall = time.perf_counter() - t0
            samples = [list(c.texts) for c in proxy.completions]
            tokens = sum(sum(c.completion_tokens) for c in proxy.completions)
            run = {"path": "build", "wall_s": wall, "tokens": tokens, "generate_s": CLOCK.seconds.get("generate", 0.0),
                   "split_s": split(wall), "shots": shots,
                   "same_samples_as_first_raw": samples == raw_texts}
            s = run["split_s"]
            run["overhead_s"] = wall - s["generate"] - s["verify"]
            run["overhead_pct"] = 100 * run["overhead_s"] / wall
        run |= {"tokens_per_s": run["tokens"] / run["wall_s"], "loadavg_1m_before": load}
        runs.append(run)
        print(f"  run {i + 1}/{len(order)} {kind:<5}: {run['wall_s']:.2f}s, {run['tokens']} tokens, "
              f"{run['tokens_per_s']:.1f} tok/s" + (f", overhead {run['overhead_pct']:.2f}%" if kind == "build" else ""),
              flush=True)
    gen.close()

    build = [r for r in runs if r["path"] == "build"]
    # each build against the mean of the raw runs either side of it
    ratios = [b["tokens_per_s"] / ((runs[runs.index(b) - 1]["tokens_per_s"] + runs[runs.index(b) + 1]["tokens_per_s"]) / 2)
              for b in build]
    ratio = sum(ratios) / len(ratios)
    overhead = sum(b["overhead_pct"] for b in build) / len(build)
    return {
        "model": gen.model_id, "model_name": args.model, "task": args.task, "problems": len(problems),
        "samples": rounds.samples,
        "temperature": rounds.temperature, "max_tokens": rounds.max_tokens, "prompt_tokens": prompt_tokens,
        "engine_load_s": round(gen.load_seconds, 1), "order": order,
        "runs": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in runs],
        "throughput_ratio_build_vs_raw": round(ratio, 3), "throughput_ratios": [round(r, 3) for r in ratios],
        "overhead_pct": round(overhead, 2),
        "pass_throughput": ratio >= THROUGHPUT_TARGET, "pass_overhead": overhead <= 100 * OVERHEAD_TARGET,
        "identical_samples": all(r["same_samples_as_first_raw"] for r in runs),
    }


def print_real(res: dict) -> None:
    print(f"\nreal engine: {res['model']} ({res['model_name']}), {res['problems']} GSM8K problems x {res['samples']} "
          f"samples, T={res['temperature']}, max_tokens {res['max_tokens']}, {res['prompt_tokens']} prompt tokens")
    print(f"{'run':<4} {'path':<6} {'wall s':>8} {'gen s':>8} {'tokens':>7} {'tok/s':>7} {'verify s':>8} "
          f"{'rows s':>7} {'parquet s':>9} {'data s':>7} {'prefect+ s':>10} {'ovh %':>6} {'load':>5}")
    for i, r in enumerate(res["runs"], 1):
        s = r.get("split_s", {})
        cols = [f"{s[k]:>{w}.3f}" if s else f"{'-':>{w}}" for k, w in
                (("verify", 8), ("rows", 7), ("parquet", 9), ("data", 7), ("prefect_and_rest", 10))]
        ovh = f"{r['overhead_pct']:>6.2f}" if "overhead_pct" in r else f"{'-':>6}"
        print(f"{i:<4} {r['path']:<6} {r['wall_s']:>8.2f} {r['generate_s']:>8.2f} {r['tokens']:>7} "
              f"{r['tokens_per_s']:>7.1f} {' '.join(cols)} {ovh} {r['loadavg_1m_before']:>5.2f}")
    verdict = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
    print(f"build throughput / raw (each build vs the raw runs either side): {res['throughput_ratio_build_vs_raw']:.3f}x "
          f"{res['throughput_ratios']}  target >= {THROUGHPUT_TARGET}x: {verdict(res['pass_throughput'])}")
    print(f"overhead (wall - generate - verify) / wall: {res['overhead_pct']:.2f}%  target <= "
          f"{100 * OVERHEAD_TARGET:.0f}%: {verdict(res['pass_overhead'])}")
    print(f"same sampled texts on every run (raw and build): {res['identical_samples']}")


# --------------------------------------------------------------------------------------- fake part


_GOLD: dict[str, dict[str, str]] = {}


class Solver:
    """Answers every sample of a GSM8K prompt correctly. Holds only the data dir (the answer table is loaded
    on first call), so Prefect's record of the flow's parameters stays small."""

    def __init__(self, data_dir: str):
        self.data_dir = data_dir

    def __call__(self, prompt, sample, rng):
        if self.data_dir not in _GOLD:
            from flows.core.data import load_problems

            _GOLD[self.data_dir] = {p.question: p.answer for p in load_problems("gsm8k", "train", self.data_dir)}
        return f"Step {sample}: compute it.\nThe answer is {_GOLD[self.data_dir][prompt[-1]['content']]}"


def make_data(src: str, n: int, dest: Path) -> int:
    """gsm8k/train.jsonl under ``dest`` with ``n`` distinct problems: real train + test rows, then copies of
    them with an edited question (a leading "Variant v:" note), which keeps the gold answer right."""
    rows = []
    for split_ in ("train", "test"):
        with open(Path(src) / "gsm8k" / f"{split_}.jsonl") as fh:
            rows += [json.loads(line) for line in fh if line.strip()]
    seen, out = set(), []
    for row in rows:
        if row["question"].strip() not in seen:
            seen.add(row["question"].strip())
            out.append(row)
    base, v = list(out), 2
    while len(out) < n:
        for row in base:
            if len(out) >= n:
                break
            q = f"Variant {v}: {row['question'].strip()}"
            if q not in seen:
                seen.add(q)
                out.append({"question": q, "answer": row["answer"]})
        v += 1
    out = out[:n]
    (dest / "gsm8k").mkdir(parents=True, exist_ok=True)
    with open(dest / "gsm8k" / "train.jsonl", "w") as fh:
        for row in out:
            fh.write(json.dumps(row) + "\n")
    return len(out)


def fake_part(args, src: str, work: Path) -> dict:
    import pyarrow.parquet as pq

    from flows.build.flow import build_bank
    from flows.core.specs import BuildSpec, Rounds, Selection
    from generators.fake import FakeGenerator

    data_dir = work / "fake-data"
    n = make_data(src, args.fake_problems, data_dir)
    runs = []
    for samples in (1, 4):
        spec = BuildSpec(mode="reinforced", selection=Selection(task="gsm8k", limit=None),
                         rounds=Rounds(samples=samples, temperature=0.7, retry_temperature=1.0, max_tokens=256, rounds=1),
                         chunk_size=args.fake_chunk_size)
        proxy = TimedGenerator(FakeGenerator(Solver(str(data_dir))), keep=False)
        CLOCK.reset()
        load = os.getloadavg()[0]
        with instrumented():
            t0 = time.perf_counter()
            path = build_bank(spec, data_dir=str(data_dir), out=str(work / f"fake-s{samples}"), generator=proxy)
            wall = time.perf_counter() - t0
        shots = pq.read_metadata(path).num_rows
        run = {"samples": samples, "problems": n, "chunks": -(-n // args.fake_chunk_size), "wall_s": round(wall, 3),
               "problems_per_s": round(n / wall, 1), "samples_per_s": round(n * samples / wall, 1),
               "shots": shots, "split_s": split(wall), "loadavg_1m_before": load}
        runs.append(run)
        print(f"  fake samples={samples}: {wall:.2f}s, {run['problems_per_s']} problems/s, {shots} shots", flush=True)
    return {"problems": n, "chunk_size": args.fake_chunk_size, "runs": runs}


def print_fake(res: dict) -> None:
    print(f"\nfake model, zero latency, every sample correct: {res['problems']} distinct GSM8K problems, "
          f"chunk size {res['chunk_size']}")
    print(f"{'samples':>7} {'wall s':>8} {'problems/s':>10} {'samples/s':>9} {'shots':>6} {'generate':>8} "
          f"{'verify':>8} {'rows':>8} {'parquet':>8} {'data':>8} {'prefect+':>8}")
    for r in res["runs"]:
        s = r["split_s"]
        pct = [f"{100 * s[k] / r['wall_s']:>7.1f}%" for k in
               ("generate", "verify", "rows", "parquet", "data", "prefect_and_rest")]
        print(f"{r['samples']:>7} {r['wall_s']:>8.2f} {r['problems_per_s']:>10.1f} {r['samples_per_s']:>9.1f} "
              f"{r['shots']:>6} {' '.join(pct)}")
    print("(time split as % of wall: generate = inside FakeGenerator.generate; verify = verifiers.verify_many; "
          "rows = rest of reinforce_chunk; parquet = chunk store + bank write; data = load + select; "
          "prefect+ = everything else: Prefect task/flow runs, report, artifacts)")


# --------------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--task", default="gsm8k", help="the real build's task: a built-in name or a task file")
    parser.add_argument("--limit", type=int, default=32, help="problems in the real build")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=1, help="build runs, each between two raw runs")
    parser.add_argument("--fake-problems", type=int, default=10_000)
    parser.add_argument("--fake-chunk-size", type=int, default=512)
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--skip-fake", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "build.json"))
    args = parser.parse_args()

    from prefect.testing.utilities import prefect_test_harness

    from flows.build.flow import build_bank
    from flows.core.specs import BuildSpec, Rounds, Selection
    from generators.fake import FakeGenerator

    data_dir = os.environ["MANYSHOT_DATA_DIR"]
    work = Path(tempfile.mkdtemp(prefix="manyshot-bench-build-"))
    result: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "ablation_running_at_start": ablation_running(), "loadavg_at_start": os.getloadavg()}}
    t0 = time.perf_counter()
    with prefect_test_harness(server_startup_timeout=120):
        result["prefect_server_start_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()  # warm Prefect, the verifiers and the flow code with a small fake build
        warm = BuildSpec(mode="reinforced", selection=Selection(task="gsm8k", limit=8),
                         rounds=Rounds(samples=2, temperature=0.7, retry_temperature=1.0, max_tokens=64, rounds=1))
        build_bank(warm, data_dir=data_dir, out=str(work / "warm"), generator=FakeGenerator(Solver(data_dir)))
        result["warm_up_build_s"] = round(time.perf_counter() - t0, 2)
        if not args.skip_real:
            result["real"] = real_part(args, data_dir, work)
        if not args.skip_fake:
            result["fake"] = fake_part(args, data_dir, work)
    result["machine"] |= {"ablation_running_at_end": ablation_running(), "loadavg_at_end": os.getloadavg()}

    print(f"\nPrefect test server start {result['prefect_server_start_s']}s, warm-up fake build "
          f"{result['warm_up_build_s']}s (not in any timing below); ablation job running: "
          f"{result['machine']['ablation_running_at_start']} at start, {result['machine']['ablation_running_at_end']} at end")
    if "real" in result:
        print_real(result["real"])
    if "fake" in result:
        print_fake(result["fake"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"\nwrote {args.out}")
    ok = "real" not in result or (result["real"]["pass_throughput"] and result["real"]["pass_overhead"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
