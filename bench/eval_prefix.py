"""Prefix-caching benchmark for many-shot evaluation: the ``evaluate`` flow against a raw ``vllm.LLM.generate``
call on the same prompts, against the same flow with prefix caching off, and a nested K sweep against its
largest K alone.

    .venv/bin/python bench/eval_prefix.py [--model embedded] [--questions 16] [--target-prefix 2000] [--k K]
                                          [--max-tokens 64] [--sweep 0,4,8,16] [--repeats 1] [--skip-off]

Setup: a ground-truth GSM8K bank (``build_bank`` mode ground-truth, 64 train problems, temporary folder);
the evaluation's own test items (GSM8K test, ``select(seed=0)``, ``--questions``) and its own seed-0 shot
order. K is the smallest K whose shared prompt prefix (common leading tokens of the rendered K-shot prompts)
reaches ``--target-prefix`` tokens, unless ``--k`` is given. Greedy decoding, ``--max-tokens`` new tokens,
so prefill dominates as in a many-shot prompt. Every measurement starts from a cold prefix cache
(``LLM.reset_prefix_cache()``), after an untimed warm-up of the engine, Prefect and the flow code.

* (b) raw: the rendered prompt texts (``generator.render``) straight into the caching engine's
  ``LLM.generate``, with the backend's engine-level reseed and equivalent ``SamplingParams``.
* (a) project: ``flows.evaluate.flow.evaluate`` with ``shots=(K,)`` on the same caching engine (fresh output
  folder each run). Runs go raw, project, raw (``--repeats 2``: raw, project, raw, project, raw).
* (c) caching off: the same flow on a second engine started with ``enable_prefix_caching=False``.
* (d) the flow with ``shots=--sweep`` against the flow with only the largest K; plus, for reference, the
  sweep's prompts as one raw engine call (what batching all cells together would cost).

Targets: (a) >= 5x faster than (c); (a) <= 1.2x (b); (d) sweep <= 1.5x the largest K alone; prefill tokens
computed in (a) (prompt tokens less ``num_cached_tokens``) <= 1.1x the minimum (the shared prefix once plus
each question's tail). The long-prefix case (K=64-ish, >= 8,000 shared tokens; target (a) <= 1.1x (b))::

    .venv/bin/python bench/eval_prefix.py --target-prefix 8000 --bank-limit 128 --max-model-len 32768 --skip-sweep \
        --out bench/results/eval_prefix_long.json

Prints a table and writes bench/results/eval_prefix.json.
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

SPEEDUP_TARGET = 5.0  # project at least 5x faster than caching off
RAW_TARGET = 1.2  # project at most 1.2x raw
LONG_RAW_TARGET, LONG_PREFIX = 1.1, 8000  # and at most 1.1x for a long prefix (--target-prefix >= 8000)
PREFILL_TARGET = 1.1  # prefill tokens computed at most 1.1x the minimum (one shared prefix + each question's rest)
SWEEP_TARGET = 1.5  # nested sweep at most 1.5x its largest K alone
TASK = "gsm8k"




@contextmanager
def instrumented(gen):
    """Time the flow's stages by wrapping attributes in this process only (no project file changes):
    the engine's ``LLM.generate`` (instance attribute; also records cached prompt tokens per call),
    ``verifiers.verify_many`` and ``flows.evaluate.flow.finish`` (results.parquet, summary, plot, artifacts)."""
    import verifiers
    from flows.evaluate import flow as ev

    llm = gen.engine
    inner = llm.generate

    def engine_generate(prompts, *args, **kwargs):
        t0 = time.perf_counter()
        outs = inner(prompts, *args, **kwargs)
        dt = time.perf_counter() - t0
        CLOCK.add("engine", dt)
        CLOCK.engine_calls.append(call_stats(outs, dt))
        return outs

    saved = [(verifiers, "verify_many", verifiers.verify_many), (ev, "finish", ev.finish)]
    verifiers.verify_many = CLOCK.wrap("verify", verifiers.verify_many)
    ev.finish = CLOCK.wrap("finish", ev.finish)
    llm.generate = engine_generate
    try:
        yield
    finally:
        del llm.generate  # back to the class method
        for obj, attr, fn in saved:
            setattr(obj, attr, fn)


def call_stats(outs, seconds: float) -> dict:
    return {"seconds": round(seconds, 3), "prompts": len(outs),
            "prompt_tokens": sum(len(o.prompt_token_ids) for o in outs),
            "cached_tokens": sum(o.num_cached_tokens or 0 for o in outs),
            "generated_tokens": sum(len(c.token_ids) for o in outs for c in o.outputs)}


class TimedGenerator:
    """A Generator proxy: time in ``generate`` and ``count_tokens``, and the texts ``generate`` returned."""

    def __init__(self, inner):
        self.inner = inner
        self.model_id, self.max_model_len, self.chat = inner.model_id, inner.max_model_len, inner.chat
        self.texts: list[list[str]] = []

    def generate(self, prompts, sampling):
        t0 = time.perf_counter()
        try:
            out = self.inner.generate(prompts, sampling)
        finally:
            CLOCK.add("generate", time.perf_counter() - t0)
        self.texts += [list(c.texts) for c in out]
        return out

    def count_tokens(self, prompt):
        t0 = time.perf_counter()
        try:
            return self.inner.count_tokens(prompt)
        finally:
            CLOCK.add("count_tokens", time.perf_counter() - t0)




def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--bank-limit", type=int, default=64)
    parser.add_argument("--target-prefix", type=int, default=2000, help="shared prefix tokens to aim K at")
    parser.add_argument("--k", type=int, default=None, help="K for (a)-(c); default: from --target-prefix")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--sweep", default="0,4,8,16")
    parser.add_argument("--repeats", type=int, default=1, help="project runs, each between two raw runs")
    parser.add_argument("--skip-off", action="store_true", help="skip (c), the caching-off engine")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "eval_prefix.json"))
    args = parser.parse_args()
    sweep = tuple(sorted(int(k) for k in args.sweep.split(",")))

    from prefect.testing.utilities import prefect_test_harness
    from vllm import SamplingParams

    from flows.build.flow import build_bank
    from flows.core.specs import BuildSpec, EvalSpec, Selection
    from flows.core.data import load_problems, select
    from flows.evaluate.flow import bank_views, evaluate
    from flows.evaluate.prompts import contaminated, many_shot_prompt
    from flows.evaluate.shot_selection import shot_order
    from generators.vllm_backend import VLLMGenerator, reseed

    data_dir = os.environ["MANYSHOT_DATA_DIR"]
    work = Path(tempfile.mkdtemp(prefix="manyshot-bench-eval-prefix-"))
    result: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "ablation_running_at_start": ablation_running(), "loadavg_at_start": os.getloadavg()}}
    rows: list[dict] = []  # the measurements table

    with prefect_test_harness(server_startup_timeout=120):
        bank = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task=TASK, limit=args.bank_limit)),
                          data_dir=data_dir, out=str(work / "banks"))
        test = load_problems(TASK, "test", data_dir)
        items = select(test, limit=args.questions, seed=0)  # what evaluate() picks
        view = bank_views((bank,))[0]
        shots = shot_order(view, 0, contaminated(view, test))  # what evaluate() uses for seed 0

        print(f"loading {args.model} (prefix caching on) ...", flush=True)
        gen = VLLMGenerator(args.model, seed=0, max_model_len=args.max_model_len, enable_prefix_caching=True)
        llm = gen.engine

        def prompts_for(k: int) -> list:
            return [many_shot_prompt(TASK, shots[:k], p.question) for p in items]

        def prefix_tokens(k: int) -> tuple[int, int]:
            ids = [gen.encode(p) for p in prompts_for(k)]
            shared = min(common_prefix(ids[0], x) for x in ids[1:]) if len(ids) > 1 else len(ids[0])
            return shared, max(len(x) for x in ids)

        def minimum_prefill(k: int) -> int:
            """Prefill tokens a perfect cache computes: the shared prefix once, then each prompt's own tail."""
            ids = [gen.encode(p) for p in prompts_for(k)]
            return sum(len(x) for x in ids) - (len(ids) - 1) * prefix_tokens(k)[0]

        table_k, last = {}, max(sweep + (args.k or 0,))
        for k in range(0, len(shots) + 1):  # up to the sweep and --k, and on until the target prefix is reached
            table_k[k] = prefix_tokens(k)
            if k >= last and (args.k is not None or table_k[k][0] >= args.target_prefix):
                break
        k_main = args.k if args.k is not None else next(
            (k for k, (shared, _) in table_k.items() if shared >= args.target_prefix), max(table_k))
        shared, longest = table_k[k_main]
        print(f"\nshared prefix by K ({len(items)} GSM8K test questions, ground-truth bank of {len(view.shots)} shots):")
        print("  " + "  ".join(f"K={k}:{s}" for k, (s, _) in table_k.items()))
        print(f"chosen K={k_main}: shared prefix {shared} tokens, longest prompt {longest} tokens, "
              f"max_tokens {args.max_tokens}\n", flush=True)
        result["setup"] = {"model": gen.model_id, "model_name": args.model, "questions": len(items),
                           "bank_shots": len(view.shots), "k": k_main, "shared_prefix_tokens": shared,
                           "longest_prompt_tokens": longest, "max_tokens": args.max_tokens,
                           "temperature": 0.0, "sweep": list(sweep), "engine_load_s": round(gen.load_seconds, 1),
                           "block_size": llm.llm_engine.vllm_config.cache_config.block_size,  # MANYSHOT_BLOCK_SIZE sets it
                           "shared_prefix_by_k": {k: s for k, (s, _) in table_k.items()},
                           "minimum_prefill_tokens": minimum_prefill(k_main)}

        def spec_for(ks: tuple[int, ...], n: int = len(items)) -> EvalSpec:
            return EvalSpec(task=TASK, banks=(bank,), shots=ks, seeds=1, limit=n, model=args.model, samples=1,
                            temperature=0.0, max_tokens=args.max_tokens)

        def cold(engine) -> None:
            if not engine.reset_prefix_cache():
                print("WARNING: reset_prefix_cache() reported failure", flush=True)

        def run_flow(label: str, g, ks: tuple[int, ...]) -> dict:
            cold(g.engine)
            CLOCK.reset()
            proxy = TimedGenerator(g)
            load = os.getloadavg()[0]
            with instrumented(g):
                t0 = time.perf_counter()
                folder = evaluate(spec_for(ks), data_dir=data_dir, out=str(work / f"eval-{len(rows)}"), generator=proxy).folder
                wall = time.perf_counter() - t0
            s = dict(CLOCK.seconds)
            calls = list(CLOCK.engine_calls)
            row = {"measurement": label, "k": list(ks), "wall_s": wall, "engine_s": s.get("engine", 0.0),
                   "generate_s": s.get("generate", 0.0), "count_tokens_s": s.get("count_tokens", 0.0),
                   "verify_s": s.get("verify", 0.0), "finish_s": s.get("finish", 0.0),
                   "cached_tokens": sum(c["cached_tokens"] for c in calls),
                   "prompt_tokens": sum(c["prompt_tokens"] for c in calls),
                   "generated_tokens": sum(c["generated_tokens"] for c in calls),
                   "engine_calls": calls, "loadavg_1m_before": load, "texts": proxy.texts, "folder": folder}
            row["other_s"] = wall - row["generate_s"] - row["count_tokens_s"] - row["verify_s"] - row["finish_s"]
            return add(row)

        def run_raw(label: str, engine, ks: tuple[int, ...], max_tokens: int = args.max_tokens) -> dict:
            texts = [gen.render(p) for k in ks for p in prompts_for(k)]
            params = SamplingParams(n=1, temperature=0.0, top_p=1.0, max_tokens=max_tokens)
            cold(engine)
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            reseed(engine, 0)
            outs = engine.generate(texts, params, use_tqdm=False)
            wall = time.perf_counter() - t0
            call = call_stats(outs, wall)
            return add({"measurement": label, "k": list(ks), "wall_s": wall, "engine_s": wall,
                        "cached_tokens": call["cached_tokens"], "prompt_tokens": call["prompt_tokens"],
                        "generated_tokens": call["generated_tokens"], "engine_calls": [call],
                        "loadavg_1m_before": load, "texts": [[o.outputs[0].text] for o in outs]})

        def add(row: dict) -> dict:
            rows.append(row)
            print(f"  {row['measurement']:<34} K={','.join(map(str, row['k'])):<9} {row['wall_s']:8.2f}s  "
                  f"engine {row['engine_s']:7.2f}s  cached {row['cached_tokens']}/{row['prompt_tokens']} prompt tokens",
                  flush=True)
            return row

        # untimed warm-up: engine, Prefect, the evaluate flow (verifiers, pandas, matplotlib) and the raw path
        t0 = time.perf_counter()
        llm.generate([gen.render(p) for p in prompts_for(2)[:2]], SamplingParams(max_tokens=8), use_tqdm=False)
        evaluate(EvalSpec(task=TASK, banks=(bank,), shots=(0, 1), seeds=1, limit=2, model=args.model,
                          temperature=0.0, max_tokens=8), data_dir=data_dir, out=str(work / "warm"), generator=gen)
        result["warm_up_s"] = round(time.perf_counter() - t0, 1)

        # (b) raw and (a) project, alternated
        ks = (k_main,)
        for i in range(args.repeats):
            run_raw("(b) raw LLM.generate, caching on", llm, ks)
            run_flow("(a) project evaluate, caching on", gen, ks)
        run_raw("(b) raw LLM.generate, caching on", llm, ks)
        # (e) the same raw call generating one token: its prefill cost, to split (b) into prefill and decode
        run_raw("(e) raw, caching on, max_tokens=1", llm, ks, max_tokens=1)

        # (d) nested sweep vs its largest K alone (project path), and the sweep as one raw call
        if not args.skip_sweep:
            run_flow("(d) project, largest K alone", gen, (sweep[-1],))
            run_flow("(d) project, nested sweep", gen, sweep)
            run_flow("(d) project, largest K alone", gen, (sweep[-1],))
            run_raw("(d') raw, largest K alone", llm, (sweep[-1],))
            run_raw("(d') raw, sweep in one engine call", llm, sweep)
        gen.close()

        # (c) caching off: a second engine, same flow
        if not args.skip_off:
            print(f"loading {args.model} (prefix caching off) ...", flush=True)
            off = VLLMGenerator(args.model, seed=0, max_model_len=args.max_model_len, enable_prefix_caching=False)
            off.engine.generate([gen.render(p) for p in prompts_for(2)[:2]], SamplingParams(max_tokens=8), use_tqdm=False)
            run_flow("(c) project evaluate, caching off", off, ks)
            off.close()

    result["machine"] |= {"ablation_running_at_end": ablation_running(), "loadavg_at_end": os.getloadavg()}

    # ---------------------------------------------------------------------------------------- report
    def rows_of(prefix: str) -> list[dict]:
        return [r for r in rows if r["measurement"].startswith(prefix)]

    raw_runs, project_runs = rows_of("(b)"), rows_of("(a)")
    # each project run against the raw runs either side of it
    raw_ratios = [r["wall_s"] / ((rows[rows.index(r) - 1]["wall_s"] + rows[rows.index(r) + 1]["wall_s"]) / 2)
                  for r in project_runs]
    project_wall = sum(r["wall_s"] for r in project_runs) / len(project_runs)
    summary = {"project_vs_raw": sum(raw_ratios) / len(raw_ratios), "project_vs_raw_each": raw_ratios}
    raw_target = LONG_RAW_TARGET if args.target_prefix >= LONG_PREFIX else RAW_TARGET
    summary["raw_target"] = raw_target
    summary["pass_raw"] = summary["project_vs_raw"] <= raw_target
    reference = raw_runs[0]["texts"]
    summary["same_texts_raw_and_project"] = all(r["texts"] == reference for r in raw_runs + project_runs)
    raw_mean = sum(r["wall_s"] for r in raw_runs) / len(raw_runs)
    prefill_on = rows_of("(e)")[0]["wall_s"]
    summary["decode_s_estimate"] = raw_mean - prefill_on  # (b) minus its one-token twin
    summary["prefill_on_s"] = prefill_on
    if rows_of("(c)"):
        off_row = rows_of("(c)")[0]
        summary["off_vs_project"] = off_row["wall_s"] / project_wall
        summary["pass_speedup"] = summary["off_vs_project"] >= SPEEDUP_TARGET
        summary["same_texts_caching_off"] = off_row["texts"] == reference
        # (c)'s engine time less the same decode work: its prefill, against (e)
        summary["prefill_off_s_estimate"] = off_row["engine_s"] - summary["decode_s_estimate"]
        summary["prefill_speedup_estimate"] = summary["prefill_off_s_estimate"] / prefill_on
    if rows_of("(d)"):
        alones, nested = rows_of("(d) project, largest"), rows_of("(d) project, nested")[0]
        alone = {"wall_s": sum(r["wall_s"] for r in alones) / len(alones)}
        summary["sweep_vs_alone"] = nested["wall_s"] / alone["wall_s"]
        summary["pass_sweep"] = summary["sweep_vs_alone"] <= SWEEP_TARGET
        summary["sweep_cells"] = [{"k": k, **c} for k, c in zip(sweep, nested["engine_calls"])]
        ralone, rsweep = rows_of("(d') raw, largest")[0], rows_of("(d') raw, sweep")[0]
        summary["sweep_cells_engine_s"] = sum(c["seconds"] for c in nested["engine_calls"])
        summary["raw_one_call_sweep_vs_alone"] = rsweep["wall_s"] / ralone["wall_s"]
    project_row = project_runs[0]
    summary["prefill_computed"] = project_row["prompt_tokens"] - project_row["cached_tokens"]
    summary["prefill_minimum"] = result["setup"]["minimum_prefill_tokens"]
    summary["prefill_vs_minimum"] = summary["prefill_computed"] / summary["prefill_minimum"]
    summary["pass_prefill"] = summary["prefill_vs_minimum"] <= PREFILL_TARGET
    result["summary"] = summary
    result["measurements"] = [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k != "texts"}
                              for r in rows]

    st = result["setup"]
    print(f"\n{st['model']} ({st['model_name']}): {st['questions']} GSM8K test questions, K={st['k']} "
          f"(shared prefix {st['shared_prefix_tokens']} tokens, longest prompt {st['longest_prompt_tokens']}), "
          f"greedy, max_tokens {st['max_tokens']}; cold prefix cache before every run")
    print(f"{'#':<3} {'measurement':<36} {'K':<9} {'wall s':>8} {'engine s':>8} {'count s':>7} {'verify s':>8} "
          f"{'finish s':>8} {'other s':>7} {'cached/prompt tok':>18} {'gen tok':>7} {'load':>5}")
    for i, r in enumerate(rows, 1):
        opt = lambda key, w: f"{r[key]:>{w}.2f}" if key in r else f"{'-':>{w}}"  # noqa: E731
        print(f"{i:<3} {r['measurement']:<36} {','.join(map(str, r['k'])):<9} {r['wall_s']:>8.2f} {r['engine_s']:>8.2f} "
              f"{opt('count_tokens_s', 7)} {opt('verify_s', 8)} {opt('finish_s', 8)} {opt('other_s', 7)} "
              f"{str(r['cached_tokens']) + '/' + str(r['prompt_tokens']):>18} {r['generated_tokens']:>7} "
              f"{r['loadavg_1m_before']:>5.2f}")
    verdict = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
    print(f"\n(a)/(b) project vs raw: {summary['project_vs_raw']:.3f}x "
          f"{[round(x, 3) for x in summary['project_vs_raw_each']]}  target <= {raw_target}x: {verdict(summary['pass_raw'])}")
    if "off_vs_project" in summary:
        print(f"(c)/(a) caching off vs project: {summary['off_vs_project']:.2f}x faster  "
              f"target >= {SPEEDUP_TARGET}x: {verdict(summary['pass_speedup'])}")
        print(f"    split: (b) = prefill {summary['prefill_on_s']:.2f}s ((e), one token) + decode "
              f"{summary['decode_s_estimate']:.2f}s of {args.max_tokens} tokens, which caching cannot shorten; (c) engine "
              f"less that decode = prefill {summary['prefill_off_s_estimate']:.2f}s, so the prefill alone is "
              f"{summary['prefill_speedup_estimate']:.1f}x faster with caching")
    if "sweep_vs_alone" in summary:
        print(f"(d) sweep K={','.join(map(str, sweep))} vs K={sweep[-1]} alone (mean of the runs either side): "
              f"{summary['sweep_vs_alone']:.2f}x  "
              f"target <= {SWEEP_TARGET}x: {verdict(summary['pass_sweep'])}")
        print("    sweep cells (engine calls): " + "; ".join(
            f"K={c['k']}: {c['seconds']:.2f}s, cached {c['cached_tokens']}/{c['prompt_tokens']}, "
            f"{c['generated_tokens']} generated" for c in summary["sweep_cells"]))
        print(f"(d') reference, raw: the sweep's prompts in one engine call vs K={sweep[-1]} alone: "
              f"{summary['raw_one_call_sweep_vs_alone']:.2f}x")
    print(f"(a) prefill tokens computed (prompt less cached, from num_cached_tokens): {summary['prefill_computed']} vs "
          f"minimum {summary['prefill_minimum']} (one shared prefix + each question's tail): "
          f"{summary['prefill_vs_minimum']:.3f}x  target <= {PREFILL_TARGET}x: {verdict(summary['pass_prefill'])}; "
          f"KV block {st['block_size']} tokens (only whole blocks are shared)")
    print(f"same generated texts, raw and project: {summary['same_texts_raw_and_project']}"
          + (f"; caching off: {summary['same_texts_caching_off']}" if "same_texts_caching_off" in summary else ""))
    print(f"ablation job running: {result['machine']['ablation_running_at_start']} at start, "
          f"{result['machine']['ablation_running_at_end']} at end; warm-up {result['warm_up_s']}s (untimed)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"wrote {args.out}")
    ok = (summary["pass_raw"] and summary["pass_prefill"] and summary.get("pass_speedup", True)
          and summary.get("pass_sweep", True))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
