"""http steps against a loopback server: statuses, retries, secrets in headers."""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sous_contracts.common import StepStatus
from tests.executor.conftest import execute

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

TOKEN = "tok-3c1f9a77e2"


class _Handler(BaseHTTPRequestHandler):
    calls: Counter[str] = Counter()

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.calls[self.path] += 1
        auth = self.headers.get("Authorization", "")
        if self.path == "/echo":
            self._reply(200, {"auth": auth})
        elif self.path == "/flaky":
            self._reply(503 if self.calls[self.path] < 3 else 200, {"try": self.calls[self.path]})
        elif self.path == "/boom":
            self._reply(500, {"error": f"rejected {auth}"})
        else:
            self._reply(404, {"error": "no such thing"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        self._reply(201, {"got": body})


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv("SOUS_SECRET_SALES__API_TOKEN", TOKEN)
    return TOKEN


def http_step(url: str, **spec) -> object:
    return execute(
        "http",
        {"url": url, "headers": {"Authorization": "Bearer ${secret:api_token}"}, **spec},
        secrets=["api_token"],
    )


async def test_post_succeeds_and_outputs_status_and_response(
    harness, executor, server, token
) -> None:
    finished = await harness.run(http_step(f"{server}/items", method="POST", body={"n": 1}))
    assert finished.status == StepStatus.SUCCEEDED, finished.error
    assert finished.outputs.values == {"status": 201, "response": {"got": {"n": 1}}}


async def test_secret_header_is_sent_but_redacted_in_outputs(
    harness, executor, server, token
) -> None:
    finished = await harness.run(http_step(f"{server}/echo"))
    assert finished.outputs.values["response"] == {"auth": "Bearer ***"}
    assert TOKEN not in str(harness.raw)


async def test_5xx_is_retried_until_success(harness, executor, server, token) -> None:
    finished = await harness.run(http_step(f"{server}/flaky"))
    assert finished.status == StepStatus.SUCCEEDED
    assert finished.outputs.values["response"] == {"try": 3}
    assert "try 1/3: HTTP 503" in finished.log_tail


async def test_unexpected_status_fails_with_status_and_redacted_body(
    harness, executor, server, token
) -> None:
    missing = await harness.run(http_step(f"{server}/missing"))
    assert missing.status == StepStatus.FAILED
    assert missing.error.kind == "http_status"
    assert missing.error.http_status == 404
    assert "no such thing" in missing.error.message
    boom = await harness.run(http_step(f"{server}/boom"))
    assert boom.error.http_status == 500
    assert "rejected Bearer ***" in boom.error.message
    assert TOKEN not in str(harness.raw)


async def test_connection_errors_are_retried_then_reported(harness, executor, token) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    finished = await harness.run(http_step(f"http://127.0.0.1:{port}/x"))
    assert finished.status == StepStatus.FAILED
    assert finished.error.kind == "exception"
    assert finished.error.exception_type == "ConnectError"
    assert "after 3 tries" in finished.error.message


async def test_a_secret_the_step_may_not_read_is_a_spec_error(harness, executor, server) -> None:
    command = execute(
        "http", {"url": f"{server}/echo", "headers": {"X": "${secret:other}"}}, secrets=[]
    )
    finished = await harness.run(command)
    assert finished.error.kind == "spec"
    assert "'other'" in finished.error.message
