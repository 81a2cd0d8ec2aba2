"""Benchmark: prefill tokens per cell and server with prefix routing vs the shared work queue (issue 28).

``bench/endpoints.py prefix`` runs this. Each *cell* is ``--questions`` prompts sharing one shot prefix of about
``--prefix-words`` words, then their own question, as in an evaluation cell. The cells are generated once with the
shared work queue (``route_prefix_chars=0``, the routing before issue 28) and once with prefix routing (the
default), each routing with prefixes of its own (and of this run: ``--salt``), so neither reads the other's cache.
Per cell and server it reports the prompts served, the prompt tokens, the tokens the server computed (prompt less
cached) and the minimum: the shared prefix once plus each question's own tokens (from ``/tokenize`` token ids).

Where the numbers come from: ``usage.prompt_tokens_details.cached_tokens`` when the server reports it (vLLM:
``--enable-prompt-tokens-details``), else the deltas of vLLM's ``/metrics`` counters ``vllm:prefix_cache_queries``
and ``vllm:prefix_cache_hits`` around each cell (on by default; not with ``--disable-log-stats``). Nothing else may
use the servers meanwhile.

    .venv/bin/python bench/endpoints.py prefix --endpoint http://127.0.0.1:8000/v1 --endpoint http://127.0.0.1:8001/v1
    .venv/bin/python bench/endpoints.py prefix --stub 3      # plumbing check: three stub server processes
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from generators.base import Sampling  # noqa: E402
from generators.openai_backend import OpenAIGenerator  # noqa: E402
from generators.openai_routing import DEFAULT_ROUTE_CHARS  # noqa: E402
from generators.openai_transport import api_root  # noqa: E402
from generators.prompts import chat  # noqa: E402

WORDS = ("apple river number seven table garden count total price train hour minute share equal half double "
         "three four five eight nine ten twelve hundred thousand each every more less than after before sum "
         "difference product answer step first second third next then so therefore because since left right").split()
METRICS = ("vllm:prefix_cache_queries", "vllm:prefix_cache_hits", "vllm:prompt_tokens")


def cell_prompts(tag: str, words: int, questions: int) -> list[list[dict]]:
    """``questions`` prompts sharing shots of about ``words`` words drawn with the seed ``tag``."""
    rng = random.Random(tag)
    shots, size = [], 0
    while size < words:
        q = " ".join(rng.choices(WORDS, k=40))
        a = " ".join(rng.choices(WORDS, k=40)) + f". The answer is {rng.randint(1, 999)}"
        shots.append((f"{tag} {q}?", a))
        size += 82
    return [chat("Solve the problem step by step.", shots, f"Question {i}: " + " ".join(rng.choices(WORDS, k=20)))
            for i in range(questions)]


def scrape(client: httpx.Client, root: str) -> dict[str, float] | None:
    """vLLM's prefix-cache and prompt-token counters of one server, summed over labels; None without /metrics."""
    try:
        response = client.get(f"{root}/metrics")
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    out = {name: 0.0 for name in METRICS}
    for line in response.text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        base = name.split("{")[0].removesuffix("_total")
        if base in out:
            out[base] += float(value)
    return out


def minimum_tokens(client: httpx.Client, root: str, model: str, prompts: list[list[dict]]) -> dict | None:
    """The shared prefix's tokens (common leading token ids), the prompts' tokens, and the minimum to compute."""
    ids = []
    for p in prompts:
        response = client.post(f"{root}/tokenize", json={"model": model, "messages": p, "add_generation_prompt": True})
        tokens = response.json().get("tokens") if response.status_code == 200 else None
        if not tokens:
            return None
        ids.append(tokens)
    shared = 0
    while all(len(t) > shared and t[shared] == ids[0][shared] for t in ids):
        shared += 1
    total = sum(len(t) for t in ids)
    return {"shared_prefix": shared, "prompt_tokens": total, "minimum": total - (len(ids) - 1) * shared}


def run_cell(gen: OpenAIGenerator, client: httpx.Client, prompts: list[list[dict]], max_tokens: int) -> dict:
    roots = gen.endpoints
    before = {ep: scrape(client, ep) for ep in roots}
    t0 = time.perf_counter()
    gen.generate(prompts, Sampling(max_tokens=max_tokens, seed=0))
    wall = time.perf_counter() - t0
    after = {ep: scrape(client, ep) for ep in roots}
    run = gen.last_run
    servers = {}
    for i, ep in enumerate(roots):
        row = {"prompts": run["done_by"].get(ep, 0), "prompt_tokens": run["prompt_tokens"].get(ep, 0)}
        if ep in run["cached_tokens"]:
            row["computed_usage"] = row["prompt_tokens"] - run["cached_tokens"][ep]
        if before[ep] is not None and after[ep] is not None:
            delta = {name: after[ep][name] - before[ep][name] for name in METRICS}
            row["computed_metrics"] = int(delta["vllm:prefix_cache_queries"] - delta["vllm:prefix_cache_hits"])
        servers[f"server {i}"] = row
    return {"wall_s": round(wall, 3), "servers": servers, "dead": list(run["dead"])}


def computed(row: dict) -> int | None:
    """A server's computed tokens: from usage when reported, else from /metrics (0 when it served nothing)."""
    return 0 if not row["prompts"] else row.get("computed_usage", row.get("computed_metrics"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/endpoints.py prefix", description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", action="append", default=[], help="OpenAI-compatible server URL (repeatable)")
    ap.add_argument("--stub", type=int, default=0, help="start N stub server processes (tests/openai_stub.py)")
    ap.add_argument("--stub-latency", type=float, default=0.02)
    ap.add_argument("--model", help="served model name (default: the first of /v1/models)")
    ap.add_argument("--cells", type=int, default=3)
    ap.add_argument("--questions", type=int, default=16)
    ap.add_argument("--prefix-words", type=int, default=6000, help="words of the shared prefix (about 8k tokens)")
    ap.add_argument("--max-tokens", type=int, default=1, help="generated tokens per prompt (1: prefill only)")
    ap.add_argument("--concurrency", type=int, default=8, help="requests in flight per server")
    ap.add_argument("--route-prefix-chars", type=int, default=DEFAULT_ROUTE_CHARS)
    ap.add_argument("--salt", default=f"{time.time_ns()}", help="makes this run's prefixes new to the servers")
    ap.add_argument("--timeout", type=float, default=1800.0, help="per-request read timeout, seconds")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "endpoints_prefix.json")
    args = ap.parse_args(argv)
    if bool(args.endpoint) == bool(args.stub):
        ap.error("give --endpoint URL (repeatable) or --stub N")

    stubs = []
    if args.stub:
        from openai_stub import StubProcess

        stubs = [StubProcess("--latency", str(args.stub_latency)) for _ in range(args.stub)]
    urls = args.endpoint or [s.url for s in stubs]
    client = httpx.Client(timeout=60, trust_env=False)
    rows = []
    try:
        for routing, chars in (("shared queue", 0), ("prefix", args.route_prefix_chars)):
            gen = OpenAIGenerator(urls, model=args.model, route_prefix_chars=chars, concurrency=args.concurrency,
                                  timeout_s=args.timeout)
            for c in range(args.cells):
                prompts = cell_prompts(f"{args.salt}/{routing}/{c}", args.prefix_words, args.questions)
                floor = minimum_tokens(client, api_root(urls[0]), gen.model_id, prompts)
                row = {"routing": routing, "cell": c, **run_cell(gen, client, prompts, args.max_tokens),
                       "minimum": floor}
                row["computed"] = (sum(computed(r) for r in row["servers"].values())
                                   if all(computed(r) is not None for r in row["servers"].values()) else None)
                rows.append(row)
                print_row(row)
            gen.close()
    finally:
        client.close()
        for s in stubs:
            s.kill()
    totals = {}
    for routing in ("shared queue", "prefix"):
        mine = [r for r in rows if r["routing"] == routing]
        known = all(r["computed"] is not None for r in mine)
        totals[routing] = {"computed": sum(r["computed"] for r in mine) if known else None,
                           "minimum": sum(r["minimum"]["minimum"] for r in mine) if all(r["minimum"] for r in mine)
                           else None,
                           "wall_s": round(sum(r["wall_s"] for r in mine), 3)}
    for routing, t in totals.items():
        ratio = f"{t['computed'] / t['minimum']:.2f}x the minimum" if t["computed"] and t["minimum"] else "n/a"
        print(f"{routing:13} computed {t['computed']} prompt tokens, minimum {t['minimum']}: {ratio}; {t['wall_s']} s")
    result = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "endpoints": len(urls), "rows": rows, "totals": totals, "python": platform.python_version(),
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def print_row(row: dict) -> None:
    floor = row["minimum"]["minimum"] if row["minimum"] else "n/a"
    split = "; ".join(f"{name}: {r['prompts']} prompts, {computed(r)} computed of {r['prompt_tokens']}"
                      for name, r in row["servers"].items() if r["prompts"])
    print(f"{row['routing']:13} cell {row['cell']}: computed {row['computed']} (minimum {floor}), "
          f"{row['wall_s']} s  [{split}]")


if __name__ == "__main__":
    raise SystemExit(main())
