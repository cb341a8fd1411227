"""The catalog lock serialises one registry's changes and no other registry's."""

from __future__ import annotations

import asyncio

import pytest

from sous_common.db import AnyConnection
from sous_common.settings import DatabaseSettings
from sous_domain_registry.adapters.store import lock_catalog
from tests.conftest import migrated_pool

pytestmark = pytest.mark.postgres


async def _waits_for_a_lock(conn: AnyConnection, pid: int) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
        )
    )


async def test_the_catalog_lock_is_one_schemas_own(
    db_settings: DatabaseSettings, schema: str
) -> None:
    async with (
        migrated_pool(db_settings, schema, []) as here,
        migrated_pool(db_settings, f"{schema}_other", []) as other,
        here.acquire() as holder,
        here.acquire() as same,
        here.acquire() as watch,
    ):
        tx = holder.transaction()
        await tx.start()
        await lock_catalog(holder)

        # another registry's schema on the same database is not held up
        async with other.acquire() as c, c.transaction(), asyncio.timeout(5):
            await lock_catalog(c)

        # a second change in this schema waits until the holder commits
        pid = same.get_server_pid()
        async with same.transaction():
            waiter = asyncio.create_task(lock_catalog(same))
            async with asyncio.timeout(10):
                while not await _waits_for_a_lock(watch, pid):
                    await asyncio.sleep(0.02)
            assert not waiter.done()
            await tx.commit()
            async with asyncio.timeout(10):
                await waiter
