"""The ops endpoint of every service: `/healthz`, `/readyz` and `/metrics` on `SOUS_OPS_PORT`.

It is the standard library's threaded WSGI server with prometheus_client's own WSGI app for
`/metrics` (content negotiation, gzip): no framework, no signal handlers, nothing on the
event loop while nobody asks. Each answer runs its checks on the service's event loop with a
deadline, so `/healthz` also says the loop still turns: a loop stuck in a busy handler
answers 503 there, and a liveness probe restarts it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, make_wsgi_app

from sous_common.logs import get_logger
from sous_common.settings import OpsSettings

log = get_logger(__name__)

Readiness = Callable[[], Awaitable[dict[str, bool]]]
"""Returns each readiness check by name; ready when all are True."""
Refresh = Callable[[], Awaitable[None]]
"""Reads the gauges that are read at scrape time."""

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds are not news."""


class OpsServer:
    """Serves the three paths for one service from a daemon thread."""

    def __init__(
        self,
        settings: OpsSettings,
        loop: asyncio.AbstractEventLoop,
        readiness: Readiness,
        refresh: Refresh,
    ) -> None:
        self.settings = settings
        self._loop = loop
        self._readiness = readiness
        self._refresh = refresh
        self._metrics = make_wsgi_app(REGISTRY)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the one picked when the setting was 0)."""
        assert self._server is not None, "the ops endpoint is not started"
        return int(self._server.server_port)

    def start(self) -> int:
        """Listen and serve in the background; return the port."""
        self._server = make_server(
            self.settings.host,
            self.settings.port,
            self.app,
            server_class=_Server,
            handler_class=_Quiet,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()
        return self.port

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            await asyncio.to_thread(self._server.shutdown)
            self._server.server_close()
            self._server = None

    def _on_loop(self, work: Awaitable[Any]) -> Any:
        """Run `work` on the service's loop (from this server's thread) with the deadline."""

        async def bounded() -> Any:
            return await asyncio.wait_for(work, self.settings.probe_timeout_s)

        future = asyncio.run_coroutine_threadsafe(bounded(), self._loop)
        return future.result(self.settings.probe_timeout_s + 0.5)

    def app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The WSGI application: three paths, everything else 404."""
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            try:
                self._on_loop(self._refresh())
            except Exception as exc:  # the counters are still worth serving
                log.warning("metrics refresh failed", error=repr(exc))
            result: Iterable[bytes] = self._metrics(environ, start_response)
            return result
        if path == "/healthz":
            try:
                self._on_loop(asyncio.sleep(0))
            except Exception:
                return _answer(start_response, 503, {"alive": False, "loop": "not responding"})
            return _answer(start_response, 200, {"alive": True})
        if path == "/readyz":
            try:
                checks: dict[str, bool] = self._on_loop(self._readiness())
            except Exception as exc:
                checks = {"checked": False}
                log.info("readiness check failed", error=repr(exc))
            ready = all(checks.values())
            return _answer(start_response, 200 if ready else 503, {"ready": ready, **checks})
        return _answer(start_response, 404, {"error": "not found"})


def _answer(start_response: StartResponse, status: int, body: dict[str, Any]) -> list[bytes]:
    reasons = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}
    data = json.dumps(body).encode()
    start_response(
        f"{status} {reasons[status]}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]
