"""PostgreSQL pools: one schema per service, deadlines on every query."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from sous_common.settings import DatabaseSettings

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

AnyConnection: TypeAlias = "asyncpg.Connection | PoolConnectionProxy[Any]"
"""A connection, or one borrowed from a pool (`async with pool.acquire() as conn`)."""

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
        server_settings={
            "search_path": f"{checked_schema(schema)},public",
            "application_name": application,
        },
    )
    assert pool is not None
    return pool
