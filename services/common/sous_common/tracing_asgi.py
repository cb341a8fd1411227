"""A server span per REST call (an ASGI middleware), continuing a caller's `traceparent`.

Messages a call writes to the outbox continue its trace: a POST /v1/runs starts the trace
the run follows. With tracing off, a call passes straight through.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode

from sous_common import tracing

Scope = dict[str, Any]


class TracingMiddleware:
    """Wraps each HTTP request of an ASGI app in a `SERVER` span."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        """Serve one ASGI call."""
        if scope["type"] != "http" or not tracing.enabled():
            await self.app(scope, receive, send)
            return
        headers = [(k.decode("latin-1"), v) for k, v in scope.get("headers", ())]
        method = scope["method"]
        status = {"code": 0}

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        with tracing.TRACER.start_as_current_span(
            f"{method} {scope['path']}",
            context=tracing.extract(headers),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        ) as span:
            await self.app(scope, receive, sending)
            # The route's template, once routing found it, names the span (few names).
            route = getattr(scope.get("route"), "path", None)
            if route:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status["code"])
            if status["code"] >= 500:
                span.set_status(Status(StatusCode.ERROR))
