"""A scripted OpenAI-compatible server in a thread, shared by the backend and process-level tests."""
from __future__ import annotations

import json
import random
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeOpenAI:
    """A scripted OpenAI-compatible server in a thread.

    ``fail_first``: answer the first k generation requests with 500; ``latency``: seconds per
    generation request (a callable of the request body is also accepted); ``hook(body) -> (status,
    payload) | None`` overrides any generation answer; ``dead``: drop every connection unanswered;
    ``tokenize``: serve POST /tokenize; ``max_n``: reject larger ``n`` with 400.

    ``requests`` holds only complete requests: a POST whose body ends before its ``Content-Length`` (the
    client died between writing its headers and its body, e.g. ``kill -9`` mid-send) goes to ``aborted``
    as ``(path, bytes received, Content-Length)`` and is not answered. :meth:`wait_idle` waits until every
    connection is closed, so that everything a stopped client had sent is recorded.
    """

    def __init__(self, *, model: str = "fake-model", max_model_len: int | None = 2048, fail_first: int = 0,
                 latency=0.0, hook=None, tokenize: bool = True, max_n: int | None = None,
                 owned_by: str = "fake"):
        self.model, self.max_model_len, self.fail_first = model, max_model_len, fail_first
        self.latency, self.hook, self.tokenize, self.max_n, self.owned_by = latency, hook, tokenize, max_n, owned_by
        self.dead = False
        self.requests: list[tuple[str, dict, dict]] = []  # (path, body, headers)
        self.aborted: list[tuple[str, int, int]] = []  # (path, bytes received, Content-Length)
        self.lock = threading.Lock()
        self.inflight = self.max_inflight = 0
        self.gen_count = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else headers + body in two writes meet delayed ACKs (40 ms)

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, payload, headers: dict | None = None) -> None:
                blob = json.dumps(payload).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                try:
                    self.wfile.write(blob)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    self.close_connection = True

            def do_GET(self):
                if outer.dead:
                    self.close_connection = True
                    return
                outer.requests.append((self.path, {}, dict(self.headers)))
                if self.path == "/v1/models":
                    card = {"id": outer.model, "object": "model", "owned_by": outer.owned_by}
                    if outer.max_model_len is not None:
                        card["max_model_len"] = outer.max_model_len
                    self._send(200, {"object": "list", "data": [card]})
                elif self.path == "/health":
                    self._send(200, {})
                else:
                    self._send(404, {"error": {"message": "no such route"}})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                if outer.dead:
                    self.close_connection = True
                    return
                if len(raw) < length:  # the connection closed mid-body: nobody is waiting for an answer
                    with outer.lock:
                        outer.aborted.append((self.path, len(raw), length))
                    self.close_connection = True
                    return
                body = json.loads(raw or b"{}")
                with outer.lock:
                    outer.requests.append((self.path, body, dict(self.headers)))
                status, payload, *headers = outer.answer(self.path, body)
                if outer.dead:  # died while "generating"
                    self.close_connection = True
                    return
                self._send(status, payload, *headers)

        self.httpd = CountingServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def answer(self, path: str, body: dict):
        if path == "/tokenize":
            if not self.tokenize:
                return 404, {"detail": "Not Found"}
            text = body.get("prompt") or " ".join(m["content"] for m in body["messages"])
            return 200, {"count": len(text.split()) + (5 if "messages" in body else 0), "tokens": [],
                         "max_model_len": self.max_model_len}
        if path not in ("/v1/chat/completions", "/v1/completions"):
            return 404, {"error": {"message": f"no route {path}"}}
        with self.lock:
            self.gen_count += 1
            count = self.gen_count
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            delay = self.latency(body) if callable(self.latency) else self.latency
            if delay:
                time.sleep(delay)
            if self.hook is not None:
                override = self.hook(body)
                if override is not None:
                    return override
            if count <= self.fail_first:
                return 500, {"error": {"message": f"scripted failure {count}"}}
            if self.max_n is not None and body.get("n", 1) > self.max_n:
                return 400, {"error": {"message": f"n must be at most {self.max_n}"}}
            return 200, self.completion(path, body)
        finally:
            with self.lock:
                self.inflight -= 1

    def completion(self, path: str, body: dict) -> dict:
        chat = path.endswith("chat/completions")
        source = body["messages"][-1]["content"] if chat else body["prompt"][-40:]
        choices = []
        for i in range(body.get("n", 1)):
            rng = random.Random(f"{body.get('seed')}/{i}")
            text = f"{source} | seed={body.get('seed')} s={i} r={rng.randint(0, 999)}"
            for stop in body.get("stop") or []:
                text = text.split(stop)[0]
            choice = {"index": i, "finish_reason": "stop"}
            words = text.split()
            if chat:
                choice["message"] = {"role": "assistant", "content": text}
                if body.get("logprobs"):
                    choice["logprobs"] = {"content": [{"token": w, "logprob": -0.5, "top_logprobs": []}
                                                      for w in words]}
            else:
                choice["text"] = text
                if body.get("logprobs") is not None:
                    choice["logprobs"] = {"tokens": words, "token_logprobs": [-0.25] * len(words)}
            if body.get("return_token_ids"):
                choice["token_ids"] = list(range(len(words)))
            choices.append(choice)
        completion_tokens = sum(len(c.get("message", {}).get("content", c.get("text", "")).split())
                                for c in choices)
        choices.reverse()  # the client must order by index
        return {"id": "x", "object": "chat.completion" if chat else "text_completion", "model": body["model"],
                "choices": choices, "usage": {"prompt_tokens": 7, "completion_tokens": completion_tokens,
                                              "total_tokens": 7 + completion_tokens}}

    def gen_requests(self) -> list[dict]:
        return [b for p, b, _ in self.requests if p.endswith("completions")]

    def wait_idle(self, timeout: float = 60) -> None:
        """Wait until no connection is open or waiting to be accepted (e.g. after the client process ended)."""
        deadline = time.monotonic() + timeout
        while not self.httpd.idle():
            assert time.monotonic() < deadline, f"{self.httpd.open} connections still open after {timeout} s"
            time.sleep(0.02)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class CountingServer(ThreadingHTTPServer):
    """Counts its open connections (from ``accept`` to shutdown) and every connection it ``accepted``."""

    daemon_threads = True

    def __init__(self, *args, **kwargs):
        self.open = self.accepted = 0
        self.count_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def get_request(self):
        with self.count_lock:
            connection = super().get_request()
            self.open += 1
            self.accepted += 1
        return connection

    def shutdown_request(self, request) -> None:
        super().shutdown_request(request)
        with self.count_lock:
            self.open -= 1

    def idle(self) -> bool:
        """No connection open and none waiting in the listen backlog (checked under the lock ``accept`` takes)."""
        with self.count_lock:
            return self.open == 0 and not select.select([self.socket], [], [], 0)[0]
