"""The scripted server of the process tests: a client that dies mid-request leaves no half request behind, and
``wait_idle`` returns only once every connection is closed."""
from __future__ import annotations

import json
import socket

import pytest

from fake_openai import FakeOpenAI

HEAD = ("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: {n}\r\n\r\n")


@pytest.fixture
def server():
    srv = FakeOpenAI()
    yield srv
    srv.close()


def send_and_close(srv: FakeOpenAI, blob: bytes) -> None:
    with socket.create_connection(srv.httpd.server_address) as s:
        s.sendall(blob)


def test_a_request_cut_off_before_or_inside_its_body_is_aborted_not_recorded(server):
    body = json.dumps({"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}).encode()
    head = HEAD.format(n=len(body)).encode()
    send_and_close(server, head)  # headers written, then killed: what httpx leaves between its two writes
    send_and_close(server, head + body[:10])
    server.wait_idle(10)
    assert server.gen_requests() == []
    assert sorted(server.aborted) == [("/v1/chat/completions", 0, len(body)), ("/v1/chat/completions", 10, len(body))]

    send_and_close(server, head + body)  # complete, even though the client does not wait for the answer
    server.wait_idle(10)
    assert server.gen_requests() == [json.loads(body)] and len(server.aborted) == 2


def test_wait_idle_waits_for_open_connections(server):
    with socket.create_connection(server.httpd.server_address):
        with pytest.raises(AssertionError, match="connections still open"):
            server.wait_idle(0.5)
    server.wait_idle(10)
    assert server.httpd.open == 0
