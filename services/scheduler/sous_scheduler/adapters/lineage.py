"""OpenLineage out: the events of each decision into the outbox, and the HTTP transport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import pydantic_core

from sous_common.outbox import Record, Undeliverable
from sous_contracts.envelope import new_message_id
from sous_contracts.topics import LINEAGE
from sous_scheduler.domain.lineage import Naming, run_events
from sous_scheduler.domain.state import RunState
from sous_scheduler.settings import LineageSettings

if (
    TYPE_CHECKING
):  # the client takes a tenth of a second to import: only the HTTP transport needs it
    from openlineage.client import OpenLineageClient
    from openlineage.client.client import Event

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
    # pydantic-core's encoder: the same compact JSON as json.dumps, a third of the time.
    return pydantic_core.to_json(event)


class HttpLineage:
    """Publishes lineage rows through the openlineage-python client's configured transport.

    The client reads its standard configuration (`OPENLINEAGE_URL`, `OPENLINEAGE_CONFIG`,
    `OPENLINEAGE__TRANSPORT__*`). The outbox also carries the run's commands and events, so
    a lineage server that is down must not hold them up: a row it does not take is moved
    aside (`outbox_refused`, with a dead letter), and for `cooldown_s` after a failure the
    rows behind it are moved aside at once instead of each waiting for the server.
    """

    def __init__(self, client: OpenLineageClient | None = None, cooldown_s: float = 30.0) -> None:
        if client is None:
            from openlineage.client import OpenLineageClient

            client = OpenLineageClient()
        self._client = client
        self._cooldown_s = cooldown_s
        self._down_until = 0.0

    async def __call__(
        self, topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> Awaitable[object]:
        """Send one event; the returned awaitable is already done (HTTP answered)."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._down_until:
            raise Undeliverable("the lineage server failed a moment ago")
        event = cast("Event", json.loads(value))  # the client serialises a dict as it is
        try:
            await asyncio.to_thread(self._client.transport.emit, event)
        except Exception as exc:
            self._down_until = loop.time() + self._cooldown_s
            raise Undeliverable(f"lineage server: {type(exc).__name__}: {exc}") from exc
        done: asyncio.Future[object] = loop.create_future()
        done.set_result(None)
        return done
