"""Benchmark: sharding one build over several OpenAI-compatible endpoints.

Fake in-process servers answer each request after ``--latency`` seconds and serve at most
``--server-slots`` requests at a time (more wait in line), like a model server with a fixed batch
capacity. The same batch of ``--prompts`` prompts (n=2 samples each) is generated with one endpoint,
two endpoints, two endpoints of which one is 3x slower, and two endpoints of which one is dead; every
row's outputs must equal the one-endpoint outputs. Prints a table, writes bench/results/endpoints.json.

    .venv/bin/python bench/endpoints.py [--prompts 64] [--latency 0.2] [--server-slots 4]

``bench/endpoints.py prefix ...`` measures prefix routing on real servers instead (:mod:`prefix_routing`).
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generators.base import Sampling  # noqa: E402
from generators.openai_backend import OpenAIGenerator  # noqa: E402


class FakeServer:
    """An OpenAI-style chat endpoint with fixed latency and a fixed number of concurrent slots."""

    def __init__(self, latency: float, slots: int):
        slot_sem = threading.BoundedSemaphore(slots)
        self.served = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else headers + body in two writes meet delayed ACKs (40 ms)

            def log_message(self, *args):
                pass

            def _send(self, payload: dict) -> None:
                blob = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                try:
                    self.wfile.write(blob)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    self.close_connection = True

            def do_GET(self):
                self._send({"object": "list", "data": [{"id": "fake", "max_model_len": 4096, "owned_by": "fake"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with slot_sem:
                    time.sleep(latency)
                    outer.served += 1
                question = body["messages"][-1]["content"]
                choices = []
                for i in range(body.get("n", 1)):
                    rng = random.Random(f"{body['seed']}/{i}/{question}")
                    text = f"{question} -> {rng.randint(0, 10**6)}"
                    choices.append({"index": i, "message": {"role": "assistant", "content": text},
                                    "finish_reason": "stop"})
                self._send({"choices": choices, "usage": {"prompt_tokens": 10, "completion_tokens": 4 * len(choices)}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["prefix"]:
        from prefix_routing import main as prefix_main

        return prefix_main(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.2, help="seconds per request on a fast server")
    ap.add_argument("--server-slots", type=int, default=4, help="requests a server works on at once")
    ap.add_argument("--client-concurrency", type=int, default=4, help="requests in flight per endpoint")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "endpoints.json")
    args = ap.parse_args(argv)

    prompts = [[{"role": "user", "content": f"problem {i}"}] for i in range(args.prompts)]
    sampling = Sampling(n=2, temperature=0.7, seed=1234)
    fast = [FakeServer(args.latency, args.server_slots) for _ in range(2)]
    slow = FakeServer(3 * args.latency, args.server_slots)
    c = args.client_concurrency
    cases = [
        ("1 endpoint", [fast[0].url], c),
        ("2 endpoints", [fast[0].url, fast[1].url], c),
        ("2 endpoints, one 3x slower", [fast[0].url, slow.url], c),
        # more requests in flight than the slow server has slots: it hoards queued work at the end
        (f"same, client concurrency {2 * c}", [fast[0].url, slow.url], 2 * c),
        ("2 endpoints, one dead", [dead_url(), fast[0].url], c),
    ]
    rows, reference = [], None
    try:
        for name, urls, concurrency in cases:
            gen = OpenAIGenerator(urls, model="fake", max_model_len=4096, concurrency=concurrency,
                                  backoff_s=0.05, max_backoff_s=0.2, timeout_s=30)
            t0 = time.perf_counter()
            out = gen.generate(prompts, sampling)
            wall = time.perf_counter() - t0
            gen.close()
            if reference is None:
                reference = out
            rows.append({"case": name, "endpoints": len(urls), "client_concurrency": concurrency,
                         "wall_s": round(wall, 3),
                         "identical_to_1_endpoint": out == reference,
                         "done_by": {f"endpoint {gen.endpoints.index(u)}": k for u, k in gen.last_run["done_by"].items()},
                         "dead": len(gen.last_run["dead"])})
    finally:
        for s in (*fast, slow):
            s.close()
    base = rows[0]["wall_s"]
    for r in rows:
        r["speedup_vs_1"] = round(base / r["wall_s"], 2)
    ideal = args.prompts * args.latency / args.server_slots
    ideal_slow = args.prompts / (args.server_slots / args.latency + args.server_slots / (3 * args.latency))
    print(f"{args.prompts} prompts x n=2, {args.latency * 1000:.0f} ms/request, {args.server_slots} slots/server, "
          f"client concurrency {args.client_concurrency}/endpoint")
    print(f"ideal times: 1 endpoint {ideal:.2f} s, 2 endpoints {ideal / 2:.2f} s, fast+3x slower {ideal_slow:.2f} s")
    print(f"{'case':34} {'wall s':>8} {'speedup':>8} {'same':>5}  work split")
    for r in rows:
        split = ", ".join(f"{k}: {v}" for k, v in sorted(r["done_by"].items()))
        print(f"{r['case']:34} {r['wall_s']:8.3f} {r['speedup_vs_1']:8.2f} {str(r['identical_to_1_endpoint']):>5}  {split}")
    result = {"config": {"prompts": args.prompts, "n": sampling.n, "latency_s": args.latency,
                         "server_slots": args.server_slots, "client_concurrency": args.client_concurrency,
                         "ideal_1_endpoint_s": ideal, "ideal_fast_plus_slow_s": round(ideal_slow, 3)},
              "rows": rows, "python": platform.python_version(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                                 time.gmtime())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(r["identical_to_1_endpoint"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
