"""A stub OpenAI-compatible server to run as its own process: deterministic answers and a simulated prefix cache.

    python tests/openai_stub.py [--port 0] [--log served.jsonl] [--latency 0.0] [--block 16]

Prints ``PORT <n>`` once it listens (``--port 0`` picks a free port). Serves ``GET /v1/models``, ``/health``,
``/metrics`` (vLLM's counters ``vllm:prompt_tokens_total``, ``vllm:prefix_cache_queries_total``,
``vllm:prefix_cache_hits_total``), ``POST /tokenize``, ``/v1/chat/completions`` and ``/v1/completions``.

Tokens are whitespace-separated words of the rendered prompt (chat: each message as ``<|role|> content``). Like
vLLM's prefix cache, a request reuses the longest run of whole ``--block``-token blocks an earlier request computed
(at least its last token is always computed). The cache is idealised: a request's blocks count as computed when it
arrives, so a prefix is computed once per server however many requests holding it arrive together (a real server
may compute it more than once for requests scheduled in the same step). The answer to sample ``i`` is
``"<last message> | seed=<seed> s=<i>"``, the same on every server. With ``--log`` every answered generation request
appends one JSON line (``last``: the last message, ``seed``, ``prompt_tokens``, ``cached_tokens``), flushed at once.
Used by the ``server`` tests and by ``bench/endpoints.py prefix --stub N``; standard library only.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.request import urlopen


def tokens(body: dict) -> list[str]:
    if "messages" in body:
        text = " ".join(f"<|{m['role']}|> {m.get('content') or ''}" for m in body["messages"])
        return text.split() + (["<|assistant|>"] if body.get("add_generation_prompt", True) else [])
    return str(body.get("prompt", "")).split()


class PrefixCache:
    """Hashes of the block-aligned token prefixes computed so far, and vLLM's counters."""

    def __init__(self, block: int):
        self.block, self.blocks, self.lock = block, set(), threading.Lock()
        self.prompt_tokens = self.queries = self.hits = 0

    def chain(self, toks: list[str]) -> list[str]:
        out, h = [], hashlib.sha256()
        for start in range(0, len(toks) - len(toks) % self.block, self.block):
            h.update("\x1f".join(toks[start:start + self.block]).encode() + b"\x1e")
            out.append(h.hexdigest())
        return out

    def admit(self, toks: list[str]) -> int:
        """Tokens of ``toks`` served from the cache (whole blocks, never the last token); its blocks are cached."""
        hit = 0
        with self.lock:
            for digest in self.chain(toks[:-1]):
                if digest not in self.blocks:
                    break
                hit += self.block
            self.blocks.update(self.chain(toks))
            self.prompt_tokens += len(toks)
            self.queries += len(toks)
            self.hits += hit
        return hit


def make_handler(args: argparse.Namespace, cache: PrefixCache, log):
    log_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *a):
            pass

        def _send(self, status: int, payload, content_type: str = "application/json") -> None:
            blob = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            try:
                self.wfile.write(blob)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def do_GET(self):
            if self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": args.model, "object": "model", "owned_by": "stub",
                                                             "max_model_len": args.max_model_len}]})
            elif self.path == "/health":
                self._send(200, {})
            elif self.path == "/metrics":
                labels = f'{{engine="0",model_name="{args.model}"}}'
                lines = [f"vllm:prompt_tokens_total{labels} {float(cache.prompt_tokens)}",
                         f"vllm:prefix_cache_queries_total{labels} {float(cache.queries)}",
                         f"vllm:prefix_cache_hits_total{labels} {float(cache.hits)}"]
                self._send(200, "\n".join(lines) + "\n", "text/plain; version=0.0.4")
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if self.path == "/tokenize":
                toks = tokens(body)
                self._send(200, {"count": len(toks), "max_model_len": args.max_model_len,
                                 "tokens": [int(hashlib.sha256(t.encode()).hexdigest()[:6], 16) for t in toks]})
                return
            if self.path not in ("/v1/chat/completions", "/v1/completions"):
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            chat = "messages" in body
            toks = tokens(body)
            cached = cache.admit(toks)
            time.sleep(args.latency)
            last = body["messages"][-1]["content"] if chat else str(body.get("prompt", ""))[-60:]
            texts = [f"{last} | seed={body.get('seed')} s={i}" for i in range(body.get("n", 1))]
            choices = [{"index": i, "finish_reason": "stop",
                        **({"message": {"role": "assistant", "content": t}} if chat else {"text": t})}
                       for i, t in enumerate(texts)]
            completion_tokens = sum(len(t.split()) for t in texts)
            if log is not None:
                with log_lock:
                    log.write(json.dumps({"last": last, "seed": body.get("seed"), "prompt_tokens": len(toks),
                                          "cached_tokens": cached}) + "\n")
                    log.flush()
            self._send(200, {"id": "stub", "object": "chat.completion" if chat else "text_completion",
                             "model": args.model, "choices": choices,
                             "usage": {"prompt_tokens": len(toks), "completion_tokens": completion_tokens,
                                       "total_tokens": len(toks) + completion_tokens,
                                       "prompt_tokens_details": {"cached_tokens": cached}}})

    return Handler


class StubProcess:
    """This script started in its own process (and session); ``url`` ends in ``/v1``."""

    def __init__(self, *options: str, log: Path | None = None, timeout: float = 30.0):
        self.log = log
        cmd = [sys.executable, str(Path(__file__).resolve()), *options, *(["--log", str(log)] if log else [])]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
        line = self.proc.stdout.readline()  # blocks until the server listens or the process ends
        if not line.startswith("PORT "):
            self.kill()
            raise RuntimeError(f"stub server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}/v1"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urlopen(self.url.removesuffix("/v1") + "/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"stub server on {self.url} not healthy after {timeout} s") from None
                time.sleep(0.05)

    def served(self) -> list[dict]:
        """The generation requests it answered (its ``--log`` lines)."""
        if self.log is None or not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def kill(self) -> None:
        """SIGKILL, at once (what a crashed server looks like), and reap."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--model", default="stub-model")
    ap.add_argument("--max-model-len", type=int, default=65536)
    ap.add_argument("--latency", type=float, default=0.0, help="seconds per generation request")
    ap.add_argument("--block", type=int, default=16, help="prefix cache block, in tokens")
    ap.add_argument("--log", help="append one JSON line per answered generation request")
    args = ap.parse_args(argv)
    log = open(args.log, "a", encoding="utf-8") if args.log else None
    ThreadingHTTPServer.request_queue_size = 128  # the default 5 drops connects beyond it: a 1 s SYN retry
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args, PrefixCache(args.block), log))
    httpd.daemon_threads = True
    print(f"PORT {httpd.server_address[1]}", flush=True)
    try:
        httpd.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
