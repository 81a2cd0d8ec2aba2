"""manyshot against lm-evaluation-harness on the same many-shot GSM8K evaluation (issue 28, part 1).

    bash bench/peers_env.sh                              # once: lm-eval in .venv-peers/, on the project's vLLM
    .venv/bin/python bench/peers.py [--items 30] [--shots 0,16,64] [--max-tokens 256] [--model embedded]
                                    [--modes manyshot,first_n,default] [--sweep 0,4,16,64,128] [--seeds 2]

Both tools run as their own command line, one process per invocation, timed from outside, under
``bench/peer_run.py`` (which records the engine's load time, time in ``LLM.generate`` and, per request, prompt
tokens, tokens served from the prefix cache and a hash of the prompt's token ids). The same things on both sides:
- the test items: manyshot's own selection (GSM8K test, seed 0, ``--items``), written as the peer's test split;
- the shot pool: a ground-truth GSM8K bank (``manyshot bank build``, ``--bank-limit`` train problems), written as
  the peer's few-shot split in manyshot's seed-s shot order, so the peer's ``first_n`` sampler takes exactly
  manyshot's first K shots;
- the prompt: the chat template with the shots as multi-turn messages and manyshot's answer-format line as the
  system message (the peer's ``--apply_chat_template --fewshot_as_multiturn --system_instruction``); the script
  reports how many of the peer's prompts are token-for-token manyshot's;
- the engine: the embedded model's directory, dtype, ``max_model_len``, KV cache block, prefix caching, eager
  mode, the KV cache size (``VLLM_CPU_KVCACHE_SPACE``); greedy, ``--max-tokens`` new tokens.
Rows per K: manyshot (one invocation per K), the peer with ``first_n`` (fixed shots, asked for in the task file)
and with its default sampler (a fresh random draw of K shots for every test item, what a user gets without
asking). ``--sweep``: one manyshot invocation over the whole K list, every bank (``--banks`` ground-truth banks,
drawn with selection seeds 0, 1, ...) and ``--seeds`` shot orders, against the peer's ``first_n``, one
invocation per K, bank and seed (K=0 once). Accuracy: the peer's responses re-graded with manyshot's verifier
(strict) beside the peer's own ``exact_match``; paired with manyshot's on the same items. JSON in
bench/results/peers.json. Nothing else should run on the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, ablation_running  # noqa: E402  (sets the environment first)

PEER_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
RUNNER = ROOT / "bench" / "peer_run.py"
TASK_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {test}
    train: {shots}
test_split: test
fewshot_split: train
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{target}}}}"
target_delimiter: ""
fewshot_delimiter: ""
fewshot_config:
  sampler: {sampler}
generation_kwargs:
  until: []
  do_sample: false
  temperature: 0.0
  max_gen_toks: {max_tokens}
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    regexes_to_ignore: [",", "\\\\$", "\\\\.$"]
filter_list:
  - name: strict-match
    filter:
      - function: regex
        regex_pattern: "The answer is (\\\\-?[0-9\\\\.\\\\,]+)"
      - function: take_first
  - name: flexible-extract
    filter:
      - function: regex
        group_select: -1
        regex_pattern: "(-?[$0-9.,]{{2,}})|(-?[0-9]+)"
      - function: take_first
metadata:
  version: 1.0
"""


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, **kw)


def build_banks(work: Path, count: int, limit: int) -> list[Path]:
    """Ground-truth GSM8K banks of ``limit`` train problems, selection seeds 0..count-1 (no model involved)."""
    banks = []
    for seed in range(count):
        out = work / f"banks-seed{seed}"
        if not list(out.glob("gsm8k-ground-truth-*.parquet")):
            sh([ROOT / ".venv/bin/manyshot", "bank", "build", "--mode", "ground-truth", "--task", "gsm8k",
                "--limit", limit, "--seed", seed, "--out", out, "--no-progress", "--quiet"])
        banks.append(sorted(out.glob("gsm8k-ground-truth-*.parquet"))[0])
    return banks


def write_peer_data(work: Path, banks: list[Path], seeds: int, items: int) -> dict:
    """The test items and, per bank and seed, the shots in manyshot's order, as the peer's JSONL splits."""
    from flows.core.data import load_problems, select
    from flows.evaluate.prompts import BankView
    from flows.evaluate.shot_selection import shot_order
    from flows.runtime.banks import read_bank

    test = select(load_problems("gsm8k", "test"), limit=items, seed=0)
    test_path = work / "peer-test.jsonl"
    test_path.write_text("".join(json.dumps({"item_id": p.id, "question": p.question, "target": p.answer}) + "\n"
                                 for p in test))
    shots = {}
    for b, bank in enumerate(banks):
        view = BankView.from_rows(bank.stem, read_bank(bank)[0].to_pylist())
        for seed in range(seeds):
            path = work / f"peer-shots-bank{b}-seed{seed}.jsonl"
            path.write_text("".join(json.dumps({"question": s.question, "target": s.rationale}) + "\n"
                                    for s in shot_order(view, seed)))
            shots[b, seed] = path
    return {"test": test_path, "shots": shots, "gold": {p.id: p.answer for p in test}}


def peer_task(work: Path, data: dict, bank: int, seed: int, sampler: str, max_tokens: int) -> tuple[Path, str]:
    name = f"manyshot_gsm8k_{sampler}_b{bank}_s{seed}"
    folder = work / "peer-tasks" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(TASK_YAML.format(name=name, test=data["test"], shots=data["shots"][bank, seed],
                                                          sampler=sampler, max_tokens=max_tokens))
    return folder, name


def timed(python: Path, tool: str, args: list, stats: Path, env: dict) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([str(python), str(RUNNER), str(stats), tool, *map(str, args)], env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-6000:])
        raise SystemExit(f"peers: {tool} exited {proc.returncode} ({' '.join(map(str, args))})")
    rec = json.loads(stats.read_text())
    reqs = rec.pop("requests")
    computed = sum(r["prompt_tokens"] - r["cached_tokens"] for r in reqs)
    return rec | {"wall_s": wall, "outside_s": wall - rec["load_s"] - rec["engine_s"], "requests": len(reqs),
                  "prompt_tokens": sum(r["prompt_tokens"] for r in reqs), "computed_tokens": computed,
                  "generated_tokens": sum(r["generated_tokens"] for r in reqs),
                  "prompt_shas": [r["prompt_sha"] for r in reqs]}


def manyshot_results(out: Path) -> dict[str, dict]:
    """Per item: manyshot's strict grade and response, from the results of a one-cell run folder."""
    import pyarrow.parquet as pq

    rows = []
    for path in sorted(out.rglob("results.parquet")):
        rows += pq.read_table(path, columns=["item_id", "correct_strict", "response"]).to_pylist()
    return {r["item_id"]: r for r in rows}


def peer_results(out: Path, gold: dict) -> dict:
    """Per item: the peer's response, its own strict/flexible exact_match, and manyshot's verifier's strict grade."""
    from verifiers import verify

    per: dict[str, dict] = {}
    for path in sorted(out.rglob("samples_*.jsonl")):
        for line in path.read_text().splitlines():
            s = json.loads(line)
            item = s["doc"]["item_id"]
            rec = per.setdefault(item, {"response": s["resps"][0][0]})
            rec[f"peer_{s.get('filter', 'strict-match')}"] = bool(s.get("exact_match"))
    for item, rec in per.items():
        rec["ours_strict"] = verify(gold[item], rec["response"], "number", mode="strict").correct
    return per


def paired(ours: dict[str, bool], theirs: dict[str, bool]) -> dict:
    both = [i for i in ours if i in theirs]
    return {"items": len(both), "both": sum(ours[i] and theirs[i] for i in both),
            "manyshot_only": sum(ours[i] and not theirs[i] for i in both),
            "peer_only": sum(theirs[i] and not ours[i] for i in both),
            "agree": sum(ours[i] == theirs[i] for i in both)}


def engine_env(peer_engine: str) -> dict:
    """The environment of both tools' processes. ``peer_engine="manyshot"`` gives the peer's vLLM the process
    settings manyshot's backend sets for itself on CPU (the engine in-process, no core reserved for a scheduler
    process: ``generators/vllm_backend.py``); ``"vllm-default"`` leaves the peer's vLLM as installed, which on this
    CPU runs the engine in a child process and keeps one of the 2 cores for its scheduler."""
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "3")
    env["MANYSHOT_PROGRESS"] = "0"
    if peer_engine == "manyshot":
        env.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    return env


def peer_args(model_dir: Path, task_dir: Path, task: str, k: int, a, out: Path) -> list:
    from generators.prompts import ANSWER_FORMAT

    model_args = (f"pretrained={model_dir},dtype=auto,max_model_len={a.max_model_len},block_size={a.block_size},"
                  f"enable_prefix_caching=True,enforce_eager=True,seed=0")
    return ["--model", "vllm", "--model_args", model_args, "--tasks", task, "--include_path", task_dir,
            "--num_fewshot", k, "--apply_chat_template", "--fewshot_as_multiturn",
            "--system_instruction", ANSWER_FORMAT["gsm8k"], "--log_samples", "--output_path", out,
            "--batch_size", "auto"]


def manyshot_args(banks: list[Path], shots: str, a, out: Path, seeds: int = 1) -> list:
    return ["eval", "--task", "gsm8k", "--bank", ",".join(map(str, banks)), "--shots", shots, "--seeds", seeds,
            "--limit", a.items, "--max-tokens", a.max_tokens, "--max-model-len", a.max_model_len,
            "--block-size", a.block_size, "--model", a.model, "--out", out, "--no-progress"]


def warm(a, work: Path, model_dir: Path, bank: Path, data: dict, env: dict) -> None:
    """One untimed K=0 run of each tool on one item: the model files, Python modules and compiled kernels are then
    as warm for the first timed run as for the later ones."""
    timed(ROOT / ".venv/bin/python", "manyshot", [*manyshot_args([bank], "0", a, work / f"run-{time.time_ns()}"),
                                                  "--limit", 1], work / "stats.json", env)
    task_dir, task = peer_task(work, data, 0, 0, "first_n", a.max_tokens)
    timed(PEER_PYTHON, "lm_eval", [*peer_args(model_dir, task_dir, task, 0, a, work / f"run-{time.time_ns()}"),
                                   "--limit", 1], work / "stats.json", env)


def keep(work: Path, row: dict) -> None:
    """Append a finished run's row to WORK/rows.jsonl at once, so an interrupted benchmark keeps what it measured."""
    with open(work / "rows.jsonl", "a") as f:
        f.write(json.dumps({k: v for k, v in row.items() if k != "prompt_shas"}, default=str) + "\n")


def ladder(a, work: Path, model_dir: Path, bank: Path, data: dict, env: dict) -> list[dict]:
    rows = []
    for k in a.shots:
        ms_out = work / f"run-{time.time_ns()}"
        ms = timed(ROOT / ".venv/bin/python", "manyshot", manyshot_args([bank], str(k), a, ms_out),
                   work / "stats.json", env)
        ms_items = {item: r["correct_strict"] for item, r in manyshot_results(ms_out).items()}
        rows.append(ms | {"k": k, "mode": "manyshot", "correct": sum(ms_items.values()), "n": len(ms_items)})
        keep(work, rows[-1])
        print(f"K={k} manyshot: {ms['wall_s']:.1f} s, {sum(ms_items.values())}/{len(ms_items)}", flush=True)
        for mode in [m for m in a.modes if m != "manyshot"]:
            if mode == "default" and (k == 0 or (a.default_max_k is not None and k > a.default_max_k)):
                continue  # K=0: the samplers are the same run; above --default-max-k: too slow to wait for
            task_dir, task = peer_task(work, data, 0, 0, mode, a.max_tokens)
            out = work / f"run-{time.time_ns()}"
            peer = timed(PEER_PYTHON, "lm_eval", peer_args(model_dir, task_dir, task, k, a, out), work / "stats.json",
                         env)
            items = peer_results(out, data["gold"])
            ours = {i: r["ours_strict"] for i, r in items.items()}
            same = len(set(peer["prompt_shas"]) & set(ms["prompt_shas"]))
            rows.append(peer | {"k": k, "mode": f"peer {mode}", "correct": sum(ours.values()), "n": len(ours),
                                "peer_strict": sum(r.get("peer_strict-match", False) for r in items.values()),
                                "peer_flexible": sum(r.get("peer_flexible-extract", False) for r in items.values()),
                                "same_prompts_as_manyshot": same, "paired_with_manyshot": paired(ms_items, ours),
                                "wall_ratio_to_manyshot": peer["wall_s"] / ms["wall_s"]})
            keep(work, rows[-1])
            print(f"K={k} peer {mode}: {peer['wall_s']:.1f} s ({peer['wall_s'] / ms['wall_s']:.2f}x), "
                  f"{sum(ours.values())}/{len(ours)}, same prompts {same}/{len(ours)}", flush=True)
    return rows


def sweep(a, work: Path, model_dir: Path, banks: list[Path], data: dict, env: dict) -> dict:
    out = work / f"run-{time.time_ns()}"
    ms = timed(ROOT / ".venv/bin/python", "manyshot",
               manyshot_args(banks, ",".join(map(str, a.sweep)), a, out, seeds=a.seeds), work / "stats.json", env)
    print(f"sweep manyshot: {ms['wall_s']:.1f} s in one invocation", flush=True)
    peer_runs = []
    for k in a.sweep:
        for b in range(len(banks)) if k else [0]:
            for seed in range(a.seeds) if k else [0]:
                task_dir, task = peer_task(work, data, b, seed, "first_n", a.max_tokens)
                run = timed(PEER_PYTHON, "lm_eval", peer_args(model_dir, task_dir, task, k, a,
                                                              work / f"run-{time.time_ns()}"), work / "stats.json", env)
                peer_runs.append(run | {"k": k, "bank": b, "seed": seed})
                keep(work, peer_runs[-1] | {"mode": "sweep peer first_n"})
                print(f"sweep peer first_n K={k} bank {b} seed {seed}: {run['wall_s']:.1f} s", flush=True)
    total = {key: sum(r[key] for r in peer_runs) for key in ("wall_s", "load_s", "engine_s", "outside_s",
                                                                "computed_tokens", "prompt_tokens")}
    return {"manyshot": ms, "peer_first_n_runs": peer_runs, "peer_first_n_total": total,
            "ratio": total["wall_s"] / ms["wall_s"]}


def print_table(rows: list[dict]) -> None:
    print("\n| K | run | wall s | load s | engine s | outside s | ratio | prompt tok | computed tok | correct "
          "(our verifier) | peer strict / flexible | same prompts | paired: both / manyshot only / peer only |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|")
    for r in rows:
        p = r.get("paired_with_manyshot")
        print(f"| {r['k']} | {r['mode']} | {r['wall_s']:.1f} | {r['load_s']:.1f} | {r['engine_s']:.1f} | "
              f"{r['outside_s']:.1f} | {r.get('wall_ratio_to_manyshot', 1.0):.2f}x | {r['prompt_tokens']:,} | "
              f"{r['computed_tokens']:,} | {r['correct']}/{r['n']} | "
              f"{'%d / %d' % (r['peer_strict'], r['peer_flexible']) if 'peer_strict' in r else '-'} | "
              f"{r.get('same_prompts_as_manyshot', '-')} | "
              f"{'%d / %d / %d' % (p['both'], p['manyshot_only'], p['peer_only']) if p else '-'} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=30)
    ap.add_argument("--shots", type=lambda s: [int(x) for x in s.split(",")], default=[0, 16, 64])
    ap.add_argument("--modes", type=lambda s: s.split(","), default=["manyshot", "first_n", "default"])
    ap.add_argument("--default-max-k", type=int, default=None,
                    help="run the peer's default sampler only up to this K (it prefills every item's own prompt)")
    ap.add_argument("--peer-engine", choices=["manyshot", "vllm-default"], default="manyshot",
                    help="the peer's vLLM process settings: manyshot's (engine in-process, both cores) or vLLM's own")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--max-model-len", type=int, default=32768)
    ap.add_argument("--block-size", type=int, default=32)
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--bank-limit", type=int, default=640)
    ap.add_argument("--sweep", type=lambda s: [int(x) for x in s.split(",")], default=None,
                    help="also run the sweep comparison over these K (e.g. 0,4,16,64,128)")
    ap.add_argument("--banks", type=int, default=2, help="ground-truth banks in the sweep")
    ap.add_argument("--seeds", type=int, default=2, help="shot orders per bank in the sweep")
    ap.add_argument("--skip-ladder", action="store_true")
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "results" / "peers")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "peers.json")
    a = ap.parse_args()
    if not PEER_PYTHON.exists():
        raise SystemExit("peers: no .venv-peers; run bash bench/peers_env.sh first")
    from generators.models import resolve_model

    a.work.mkdir(parents=True, exist_ok=True)
    model_dir = Path(resolve_model(a.model).path)
    banks = build_banks(a.work, a.banks if a.sweep else 1, a.bank_limit)
    data = write_peer_data(a.work, banks, a.seeds if a.sweep else 1, a.items)
    env = engine_env(a.peer_engine)
    result = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
              "model_dir": str(model_dir), "banks": [str(b) for b in banks],
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "ablation_running_at_start": ablation_running(), "loadavg_at_start": os.getloadavg()}}
    warm(a, a.work, model_dir, banks[0], data, env)
    if not a.skip_ladder:
        result["ladder"] = ladder(a, a.work, model_dir, banks[0], data, env)
        print_table(result["ladder"])
    if a.sweep:
        result["sweep"] = sweep(a, a.work, model_dir, banks, data, env)
        s = result["sweep"]
        print(f"\nsweep K={a.sweep}, {len(banks)} banks x {a.seeds} seeds: manyshot {s['manyshot']['wall_s']:.1f} s "
              f"(1 invocation, {s['manyshot']['computed_tokens']:,} tokens computed) vs peer first_n "
              f"{s['peer_first_n_total']['wall_s']:.1f} s ({len(s['peer_first_n_runs'])} invocations, "
              f"{s['peer_first_n_total']['computed_tokens']:,} tokens computed): {s['ratio']:.2f}x")
    result["machine"] |= {"ablation_running_at_end": ablation_running(), "loadavg_at_end": os.getloadavg()}
    for r in result.get("ladder", []) + ([result["sweep"]["manyshot"], *result["sweep"]["peer_first_n_runs"]]
                                         if a.sweep else []):
        r.pop("prompt_shas", None)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1, default=str))
    print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
