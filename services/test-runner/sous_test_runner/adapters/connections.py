"""Connections of tested databases: references resolved to DSNs, and a bounded pool cache.

A reference is `secret:NAME` in the secret store of the tested step's domain and kitchen (files
under the secrets folder, `SOUS_SECRET_<DOMAIN>__…` variables), see `sous_common.references`.
Resolved DSNs carry passwords: they never leave this module except to open a pool, and
`redact` scrubs them from error texts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from sous_common import references
from sous_common.db import AnyConnection
from sous_common.logs import get_logger

log = get_logger(__name__)


class ConnectionProblem(Exception):
    """A connection cannot be named, resolved or opened; the message is safe to publish."""


def choose(named: str | None, connections: Mapping[str, str]) -> str:
    """Return the connection a check uses: its own, `default`, or the only one there is."""
    if named is not None:
        if named not in connections:
            known = ", ".join(sorted(connections)) or "none"
            raise ConnectionProblem(f"unknown connection {named!r} (step has: {known})")
        return named
    if "default" in connections:
        return "default"
    if len(connections) == 1:
        return next(iter(connections))
    raise ConnectionProblem("no connection: name one with `connection:`")


def resolve(
    ref: str,
    scope: references.Scope,
    *,
    secrets_dir: Path | None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Turn `secret:NAME` into the DSN it points to in the store of `scope`."""
    try:
        return references.resolve(ref, scope, secrets_dir=secrets_dir, environ=env)
    except references.UnresolvedReference as exc:
        raise ConnectionProblem(str(exc)) from None


def redact(text: str, dsn: str) -> str:
    """Remove a DSN and its password from a text (asyncpg errors can quote them)."""
    text = text.replace(dsn, "<connection>")
    with contextlib.suppress(ValueError):
        password = urlsplit(dsn).password
        if password:
            text = text.replace(password, "***")
    return text


class PoolCache:
    """One small asyncpg pool per resolved DSN; the least recently used is closed past `size`."""

    def __init__(
        self, *, size: int = 16, pool_max: int = 4, connect_timeout_s: float = 10.0
    ) -> None:
        self._size = size
        self._pool_max = pool_max
        self._connect_timeout_s = connect_timeout_s
        self._pools: OrderedDict[str, asyncpg.Pool] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._closing: set[asyncio.Task[None]] = set()

    async def pool(self, dsn: str) -> asyncpg.Pool:
        """Return the pool of a DSN, opening it on first use."""
        if (pool := self._pools.get(dsn)) is not None:
            self._pools.move_to_end(dsn)
            return pool
        lock = self._locks.setdefault(dsn, asyncio.Lock())
        async with lock:
            if (pool := self._pools.get(dsn)) is not None:
                return pool
            try:
                pool = await asyncpg.create_pool(
                    dsn,
                    min_size=1,
                    max_size=self._pool_max,
                    timeout=self._connect_timeout_s,
                    server_settings={"application_name": "sous-test-runner"},
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
                raise ConnectionProblem(
                    redact(f"cannot connect: {type(exc).__name__}: {exc}", dsn)
                ) from None
            assert pool is not None
            self._pools[dsn] = pool
            self._evict()
            return pool

    @contextlib.asynccontextmanager
    async def connection(self, dsn: str, timeout_s: float) -> AsyncIterator[AnyConnection]:
        """Yield a connection in a read-only transaction whose statements stop at `timeout_s`."""
        pool = await self.pool(dsn)
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            await conn.execute(f"SET LOCAL statement_timeout = {max(1, int(timeout_s * 1000))}")
            yield conn

    def _evict(self) -> None:
        while len(self._pools) > self._size:
            _, old = self._pools.popitem(last=False)
            # close() waits for borrowed connections, so tests still using the pool finish.
            task = asyncio.create_task(old.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Close every pool (at shutdown)."""
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            try:
                await asyncio.wait_for(pool.close(), 5)
            except TimeoutError:
                pool.terminate()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        log.debug("test connection pools closed", count=len(pools))
