r"""The REST edge's body checks: bounded size, then the same strict JSON as the wire.

Runs before FastAPI reads a body, so a body too large is refused with 413 before it is
buffered whole, and JSON that PostgreSQL or another reader cannot hold (NaN, `\\u0000`,
unpaired surrogates, 5,000-digit numbers, deep nesting) gets a 422 naming the place, never
a 500 from a handler that trusted it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sous_contracts import wire

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimits:
    """ASGI middleware: refuse bodies over `max_bytes` (413) and bodies not strict JSON (422)."""

    def __init__(self, app: App, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the body, then hand the request on with the body replayed."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _refuse(send, 400, "Content-Length is not a number")
                return
            if size > self.max_bytes:
                await _refuse(send, 413, self._too_large(size))
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _refuse(send, 413, self._too_large(size, at_least=True))
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if body:
            try:
                wire.loads(body)
            except wire.WireError as exc:
                await _refuse(send, 422, str(exc), loc=["body"])
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _too_large(self, size: int, *, at_least: bool = False) -> str:
        what = f"at least {size}" if at_least else str(size)
        return (
            f"request body of {what} bytes is larger than the limit of {self.max_bytes} bytes"
            " (SOUS_DOMAIN_REGISTRY_MAX_BODY_BYTES)"
        )


async def _refuse(send: Send, status: int, reason: str, loc: list[str] | None = None) -> None:
    detail: Any = [{"loc": loc, "msg": reason, "type": "value_error"}] if loc else reason
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
