"""The live stream: read-model changes heard on PostgreSQL, fanned out to open pages.

The consumers announce each committed change with NOTIFY; every web process of the console
listens on one connection and hands each change to the pages whose filters it matches.
A page too slow to keep up loses its stream (it reconnects and reloads) rather than
holding the others back.

When the listening connection drops (PostgreSQL restarted, the backend terminated), the hub
reconnects with backoff, then tells every open page to `resync`: NOTIFY keeps nothing for a
listener that was away, but every change is committed in the read model first, and LISTEN
is in place again before the pages are told, so a page that reads the read model again
(its resync, or a reload) misses nothing. A replay cursor would need a change log kept in
the read model, written on every change, for what is a rare event.
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


RESYNC: dict[str, Any] = {"kind": "resync"}
"""Told to every page once the hub listens again: changes may have been missed."""


class Hub:
    """Listens for read-model changes and fans them out; keeps listening across outages."""

    def __init__(
        self,
        dsn: str,
        *,
        connect_timeout_s: float = 10.0,
        name: str = "sous-console live",
        check_s: float = 10.0,
        backoff_s: tuple[float, float] = (0.1, 5.0),
    ) -> None:
        self._dsn = dsn
        self._timeout = connect_timeout_s
        self._name = name
        self._check_s = check_s
        self._backoff = backoff_s
        self._subs: set[Subscription] = set()
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        """Set while the hub listens; cleared from a lost connection until it listens again."""

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend of the listening connection (None while it is away)."""
        return self._conn.get_server_pid() if self._conn is not None else None

    async def start(self) -> None:
        """Open the listening connection, then keep it open."""
        await self._listen()
        self._keeper = asyncio.create_task(self._keep(), name="console-live-listener")

    async def stop(self) -> None:
        """Close the connection and end every stream."""
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        for sub in list(self._subs):
            self._end(sub)
        await self._close()

    async def _listen(self) -> None:
        conn = await asyncpg.connect(
            self._dsn, timeout=self._timeout, server_settings={"application_name": self._name}
        )
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await asyncio.wait_for(conn.add_listener(CHANNEL, self._heard), self._timeout)
        except BaseException:
            conn.terminate()
            raise
        self._conn, self._lost = conn, lost
        self.listening.set()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), 5)
            except Exception:
                conn.terminate()

    async def _healthy(self) -> bool:
        """Wait until the connection is lost (False) or a check period passed with it (True)."""
        try:
            await asyncio.wait_for(self._lost.wait(), self._check_s)
        except TimeoutError:
            pass
        else:
            return False
        if self._conn is None:
            return False
        try:
            await asyncio.wait_for(self._conn.fetchval("SELECT 1"), self._timeout)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        return True

    async def _keep(self) -> None:
        """Notice a lost connection, reconnect with backoff, then tell the pages to resync."""
        while True:
            while await self._healthy():
                pass
            self.listening.clear()
            log.warning("live stream lost its database connection; reconnecting")
            await self._close()
            delay, tries = self._backoff[0], 0
            while True:
                tries += 1
                try:
                    await self._listen()
                    break
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._backoff[1])
            log.info("live stream listens again; open pages resync", attempts=tries)
            for sub in list(self._subs):
                try:
                    sub.queue.put_nowait(RESYNC)
                except asyncio.QueueFull:
                    self._end(sub)

    def subscribe(self, flt: Filter) -> Subscription:
        """Follow changes matching `flt` until `unsubscribe`."""
        sub = Subscription(flt)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop following."""
        self._subs.discard(sub)

    def _end(self, sub: Subscription) -> None:
        """End a page's stream; a full queue is emptied so the end still reaches it."""
        self._subs.discard(sub)
        while True:
            try:
                sub.queue.put_nowait(None)
            except asyncio.QueueFull:
                sub.queue.get_nowait()
            else:
                return

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
                self._end(sub)  # the page reconnects and reloads
