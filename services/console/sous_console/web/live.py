"""The live stream: read-model changes heard on PostgreSQL, fanned out to open pages.

The consumers announce each committed change with NOTIFY; every web process of the console
listens on one connection and hands each change to the pages whose filters it matches.
A page too slow to keep up loses its stream (it reconnects and reloads) rather than
holding the others back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from sous_common.logs import get_logger
from sous_common.trust import Principal
from sous_console.service import CHANNEL

log = get_logger(__name__)

_QUEUE = 1000


@dataclass(frozen=True)
class Filter:
    """What one page follows: None or empty means everything."""

    principal: Principal
    domains: frozenset[str] = frozenset()
    kitchens: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    order_run_id: str | None = None
    kinds: frozenset[str] = frozenset()

    def matches(self, change: dict[str, Any]) -> bool:
        """True when the page shows this change and its principal may read it."""
        domain = change.get("domain")
        if domain is not None and not self.principal.may("read", domain):
            return False
        if self.kinds and change.get("kind") not in self.kinds:
            return False
        if self.domains and domain not in self.domains:
            return False
        kitchen = change.get("kitchen")
        if self.kitchens and kitchen is not None and kitchen not in self.kitchens:
            return False
        tested = change.get("kind") == "test"
        if self.severities and tested and change.get("severity") not in self.severities:
            return False
        return not (self.order_run_id and change.get("order_run_id") != self.order_run_id)


@dataclass(eq=False)
class Subscription:
    """One open page's queue of changes."""

    filter: Filter
    queue: asyncio.Queue[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.Queue(_QUEUE)
    )


class Hub:
    """Listens for read-model changes and fans them out."""

    def __init__(self, dsn: str, *, connect_timeout_s: float = 10.0) -> None:
        self._dsn = dsn
        self._timeout = connect_timeout_s
        self._subs: set[Subscription] = set()
        self._conn: asyncpg.Connection | None = None

    async def start(self) -> None:
        """Open the listening connection."""
        self._conn = await asyncpg.connect(self._dsn, timeout=self._timeout)
        await self._conn.add_listener(CHANNEL, self._heard)

    async def stop(self) -> None:
        """Close the connection and end every stream."""
        for sub in list(self._subs):
            self._end(sub)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._conn.close(), 5)
            self._conn = None

    def subscribe(self, flt: Filter) -> Subscription:
        """Follow changes matching `flt` until `unsubscribe`."""
        sub = Subscription(flt)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop following."""
        self._subs.discard(sub)

    def _end(self, sub: Subscription) -> None:
        self._subs.discard(sub)
        with contextlib.suppress(asyncio.QueueFull):
            sub.queue.put_nowait(None)

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        try:
            change = json.loads(str(payload))
        except ValueError:
            log.warning("undecodable change ignored", payload=str(payload)[:200])
            return
        for sub in list(self._subs):
            if not sub.filter.matches(change):
                continue
            try:
                sub.queue.put_nowait(change)
            except asyncio.QueueFull:
                self._subs.discard(sub)  # the page reconnects and reloads
