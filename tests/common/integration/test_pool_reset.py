"""Pooled connections: reset after plain use, returned as they are after a transaction."""

from __future__ import annotations

import asyncpg
import pytest

from sous_common.db import create_pool, transaction
from sous_common.settings import DatabaseSettings

pytestmark = pytest.mark.postgres


@pytest.fixture
async def one(db_settings: DatabaseSettings, schema: str) -> asyncpg.Pool:
    """A pool of exactly one connection, so every acquire gets the same session."""
    settings = db_settings.model_copy(update={"pool_min": 1, "pool_max": 1})
    pool = await create_pool(settings, schema=schema)
    yield pool
    await pool.close()


async def _other_session_takes(url: str, key: int) -> bool:
    other = await asyncpg.connect(url)
    try:
        return bool(await other.fetchval("SELECT pg_try_advisory_lock($1)", key))
    finally:
        await other.close()


async def test_a_session_lock_taken_outside_a_transaction_is_released_with_the_connection(
    one: asyncpg.Pool, db_settings: DatabaseSettings
) -> None:
    async with one.acquire() as conn:
        assert await conn.fetchval("SELECT pg_try_advisory_lock(4242)")
        await conn.execute("SELECT set_config('application_name', 'changed', false)")
    assert await _other_session_takes(db_settings.url, 4242)
    async with one.acquire() as conn:
        assert await conn.fetchval("SHOW application_name") != "changed"


async def test_a_failed_transaction_gets_the_full_reset(
    one: asyncpg.Pool, db_settings: DatabaseSettings
) -> None:
    # A session lock outlives the rollback: only the reset releases it.
    with pytest.raises(ValueError, match="boom"):
        async with transaction(one) as conn:
            assert await conn.fetchval("SELECT pg_try_advisory_lock(4244)")
            raise ValueError("boom")
    assert await _other_session_takes(db_settings.url, 4244)


async def test_a_committed_transaction_returns_its_connection_without_the_reset_round_trip(
    one: asyncpg.Pool, db_settings: DatabaseSettings
) -> None:
    # A session setting made inside is the witness: had the reset query run, it would be gone.
    async with transaction(one) as conn:
        await conn.execute("SELECT pg_advisory_xact_lock(4243)")
        await conn.execute("SELECT set_config('application_name', 'kept', false)")
    async with one.acquire() as conn:
        assert await conn.fetchval("SHOW application_name") == "kept"
    # What the transaction held ended with it.
    assert await _other_session_takes(db_settings.url, 4243)
