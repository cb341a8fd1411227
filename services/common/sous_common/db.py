"""PostgreSQL pools: one schema per service, deadlines on every query."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from sous_common.settings import DatabaseSettings

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

AnyConnection: TypeAlias = "asyncpg.Connection | PoolConnectionProxy[Any]"
"""A connection, or one borrowed from a pool (`async with pool.acquire() as conn`)."""

_ONLY_TRANSACTION: ContextVar[bool] = ContextVar("sous_only_transaction", default=False)
"""True while `transaction()` returns a connection whose session state it did not change."""

_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def checked_schema(schema: str) -> str:
    """Return the schema name if it is a safe identifier, else raise ValueError."""
    if not _SCHEMA.match(schema):
        raise ValueError(f"schema name {schema!r} must match {_SCHEMA.pattern}")
    return schema


async def create_pool(
    settings: DatabaseSettings, *, schema: str, application: str = "sous"
) -> asyncpg.Pool:
    """Open a pool whose connections use `schema` first on their search path."""
    pool = await asyncpg.create_pool(
        settings.url,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        command_timeout=settings.command_timeout_s,
        timeout=settings.connect_timeout_s,
        reset=_reset,
        server_settings={
            "search_path": f"{checked_schema(schema)},public",
            "application_name": application,
        },
    )
    assert pool is not None
    return pool


async def _reset(conn: asyncpg.Connection) -> None:
    """Reset a released connection's session, unless only a transaction used it.

    The full reset (unlock advisory locks, close cursors, unlisten, reset settings) is a
    round trip per release; what a committed transaction leaves (its row and `xact` locks,
    `SET LOCAL`, cursors) ended with it, so the busiest paths skip it.
    """
    if not _ONLY_TRANSACTION.get():
        await conn.execute(conn.get_reset_query())


@asynccontextmanager
async def statements(pool: asyncpg.Pool) -> AsyncIterator[AnyConnection]:
    """A pooled connection for statements that leave nothing in its session.

    Work inside may use transaction-scoped state only (no session advisory locks, LISTEN,
    plain SET): when it ends without an error, the connection goes back to the pool
    without the session reset, a round trip saved.
    """
    conn = await pool.acquire()
    clean = False
    try:
        yield conn
        clean = True
    finally:
        # The release runs in a task that copies this context: it sees the flag.
        token = _ONLY_TRANSACTION.set(clean)
        try:
            await pool.release(conn)
        finally:
            _ONLY_TRANSACTION.reset(token)


@asynccontextmanager
async def transaction(
    pool: asyncpg.Pool, *, readonly: bool = False
) -> AsyncIterator[AnyConnection]:
    """A pooled connection in a transaction, committed on exit (rolled back on an error).

    As in `statements`, work inside may use transaction-scoped state only.
    """
    async with statements(pool) as conn, conn.transaction(readonly=readonly):
        yield conn


async def lock(conn: AnyConnection, name: str) -> None:
    """Take a transaction-scoped lock on `name` within this connection's schema.

    Advisory locks are the whole database's; hashing the schema in keeps two meshes (or a
    test beside another) on one database from waiting on each other's names.
    """
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '/' || $1))", name
    )
