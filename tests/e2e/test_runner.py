"""The real local runner (``scripts/serve.py``) over HTTP: one keep-alive connection, a
register -> login -> protected walk, the problem answers, and a clean SIGTERM stop."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.runner import Runner

pytestmark = pytest.mark.e2e

STOP_SECONDS = 10
PASSWORD = "correct horse battery staple"


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    sent = {"Content-Type": "application/json", **(headers or {})}
    data = None if body is None else json.dumps(body).encode("utf-8")
    conn.request(method, path, body=data, headers=sent)
    response = conn.getresponse()
    return Answer(response.status, response.headers, response.read())


def raw_head_answer(port: int, path: str) -> bytes:
    """Everything the server sends for one HEAD request, up to its closing the connection.

    A HEAD answer is headers only (RFC 9110, 9.3.2); any body bytes would be read by a
    keep-alive client as the start of its next response.
    """
    request = f"HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(request.encode("ascii"))
        received = b""
        while chunk := raw.recv(65536):
            received += chunk
    return received


def assert_problem(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert answer.headers["Content-Type"] == "application/problem+json"
    document = answer.json()
    assert document["status"] == status
    assert document["code"] == code
    assert {"type", "title", "detail"} <= set(document)
    assert answer.headers["X-Request-Id"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_the_runner_serves_the_whole_flow_on_one_keep_alive_connection_and_stops_cleanly(
    runner: Runner,
) -> None:
    username = f"e2e{os.urandom(5).hex()}"
    conn = http.client.HTTPConnection("127.0.0.1", runner.port, timeout=10)
    try:
        created = call(conn, "POST", "/register", {"username": username, "password": PASSWORD})
        sock = conn.sock
        assert sock is not None
        assert created.status == 201, created.body
        assert created.json()["user"]["username"] == username

        logged_in = call(conn, "POST", "/login", {"username": username, "password": PASSWORD})
        assert logged_in.status == 200, logged_in.body
        assert logged_in.headers["Cache-Control"] == "no-store"
        token = logged_in.json()["access_token"]

        protected = call(conn, "GET", "/protected", headers={"Authorization": f"Bearer {token}"})
        assert protected.status == 200, protected.body
        assert protected.json()["user"]["username"] == username

        not_found = call(conn, "GET", "/no/such/route")
        assert_problem(not_found, 404, "not_found")

        no_token = call(conn, "GET", "/protected")
        assert_problem(no_token, 401, "invalid_token")
        assert no_token.headers["WWW-Authenticate"].startswith("Bearer")

        bad_token = call(conn, "GET", "/protected", headers={"Authorization": "Bearer garbage"})
        assert_problem(bad_token, 401, "invalid_token")
        assert bad_token.headers["WWW-Authenticate"].startswith("Bearer")

        wrong_password = call(conn, "POST", "/login", {"username": username, "password": "nope"})
        assert_problem(wrong_password, 401, "invalid_credentials")

        bad_body = call(conn, "POST", "/login", headers={"Content-Type": "text/plain"})
        assert_problem(bad_body, 400, "validation_error")

        wrong_method = call(conn, "DELETE", "/login")
        assert_problem(wrong_method, 405, "method_not_allowed")
        assert wrong_method.headers["Allow"] == "POST"

        head = call(conn, "HEAD", "/health")
        assert head.status == 405
        assert head.headers["Allow"] == "GET"
        assert raw_head_answer(runner.port, "/health").endswith(b"\r\n\r\n")

        again = call(conn, "GET", "/protected", headers={"Authorization": f"Bearer {token}"})
        assert again.status == 200, again.body

        # Every request above went over the one socket: the server kept it alive.
        assert conn.sock is sock

        runner.process.send_signal(signal.SIGTERM)
        try:
            code = runner.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the runner ignored SIGTERM for {STOP_SECONDS}s:\n{runner.output()}")
        assert code == 0, runner.output()
    finally:
        conn.close()
