"""Two stacks on one machine: each `sous up` talks to its own registry, or says why not."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sous import run_folder, stack
from sous.supervisor import Supervisor


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty run folder, and a shell that configured no registry."""
    monkeypatch.setattr(os, "environ", dict(os.environ))  # the code under test writes to it
    monkeypatch.setenv("SOUS_RUN_DIR", str(tmp_path))
    for key in (run_folder.REGISTRY_URL, run_folder.REGISTRY_PORT, "SOUS_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / "stack").mkdir()
    return tmp_path


class OtherStacksRegistry(BaseHTTPRequestHandler):
    """A registry that knows another admin token: every request of ours gets 401."""

    def do_GET(self) -> None:
        status = 200 if self.path == "/openapi.json" else 401
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def other_registry() -> Iterator[int]:
    """Another stack's registry, listening on a port of its own."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), OtherStacksRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_taken_port_gives_the_registry_another_recorded_for_the_cli(
    folder: Path, other_registry: int
) -> None:
    os.environ[run_folder.REGISTRY_PORT] = str(other_registry)
    url = stack.registry_url()
    port = int(url.rsplit(":", 1)[1])
    assert port != other_registry
    assert os.environ[run_folder.REGISTRY_PORT] == str(port)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free for the registry to take

    # The CLI of this checkout, in another terminal, finds it.
    del os.environ[run_folder.REGISTRY_URL]
    run_folder.use_local_stack()
    assert os.environ[run_folder.REGISTRY_URL] == url


def test_a_free_default_port_is_kept(folder: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    os.environ[run_folder.REGISTRY_PORT] = str(free)
    assert stack.registry_url() == f"http://127.0.0.1:{free}"


def test_the_registry_of_another_stack_is_refused_with_a_reason(
    folder: Path, other_registry: int
) -> None:
    url = f"http://127.0.0.1:{other_registry}"
    with pytest.raises(RuntimeError, match="not this stack's"):
        stack.wait_registry(url, "this-stacks-token", Supervisor(folder / "stack", {}))
