"""Use cases: apply one message to the read model and tell the live stream, in one transaction."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from sous_common import inbox
from sous_common.db import AnyConnection
from sous_common.runtime import Runtime
from sous_contracts.envelope import Envelope

CHANNEL = "sous_console"
"""PostgreSQL NOTIFY channel of read-model changes; every web process of the console listens."""
_NOTIFY_MAX = 7900
"""NOTIFY payloads must stay under 8000 bytes; a larger change is told without its details."""

Write = Callable[[AnyConnection, Any], Awaitable[dict[str, Any]]]


async def apply(runtime: Runtime, message: Envelope, write: Write) -> bool:
    """Apply `message` once; return False for a duplicate.

    The inbox claim, the read-model write and the notification commit together, so a
    change is announced only once it can be read, and never twice.
    """

    async def work(conn: AnyConnection) -> bool:
        if not await inbox.claim(conn, runtime.group_id, message.message_id):
            return False
        change = await write(conn, message)
        payload = json.dumps(change, default=str)
        if len(payload.encode()) > _NOTIFY_MAX:
            payload = json.dumps({k: change.get(k) for k in ("kind", "order_run_id", "domain")})
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
        return True

    # Under load, many messages share one transaction (sous_common.commits).
    return await runtime.commits.run(work)
