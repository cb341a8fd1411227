"""OpenLineage out: the events of each decision into the outbox, and the HTTP transport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, cast

from openlineage.client import OpenLineageClient
from openlineage.client.client import Event

from sous_common.outbox import Record
from sous_contracts.envelope import new_message_id
from sous_contracts.topics import LINEAGE
from sous_scheduler.domain.lineage import Naming, run_events
from sous_scheduler.domain.state import RunState
from sous_scheduler.settings import LineageSettings

HEADER_TYPE = "openlineage.RunEvent"
"""The `type` header of the records on the lineage topic."""


class LineageOut:
    """Turns state transitions into outbox records for the lineage topic (none when off)."""

    def __init__(self, settings: LineageSettings, prefix: str = "") -> None:
        self.enabled = settings.transport != "off"
        self.naming = Naming(settings.namespace, settings.producer)
        self.topic = LINEAGE.full_name(prefix)

    def records(self, before: RunState, after: RunState, at: datetime) -> list[Record]:
        """The records of the events between two states of a run, in their order."""
        if not self.enabled:
            return []
        key = str(after.order_run_id).encode()
        return [
            Record(new_message_id(), self.topic, key, _json(e), {"type": HEADER_TYPE})
            for e in run_events(before, after, at=at, naming=self.naming)
        ]


def _json(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


class HttpLineage:
    """Publishes lineage rows through the openlineage-python client's configured transport.

    The client reads its standard configuration (`OPENLINEAGE_URL`, `OPENLINEAGE_CONFIG`,
    `OPENLINEAGE__TRANSPORT__*`). A failure raises, so the relay keeps the row and retries.
    """

    def __init__(self, client: OpenLineageClient | None = None) -> None:
        self._client = client or OpenLineageClient()

    async def __call__(
        self, topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> Awaitable[object]:
        """Send one event; the returned awaitable is already done (HTTP answered)."""
        event = cast("Event", json.loads(value))  # the client serialises a dict as it is
        await asyncio.to_thread(self._client.transport.emit, event)
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done
