"""Inbox dedup commits with the effect; migrations apply once, even when started together."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from sous_common import inbox
from sous_common.migrate import Migration, common_migrations, migrate

pytestmark = pytest.mark.postgres


async def test_claim_is_true_once(pool) -> None:
    message_id = uuid.uuid4()
    async with pool.acquire() as conn:
        assert await inbox.claim(conn, "c1", message_id) is True
        assert await inbox.claim(conn, "c1", message_id) is False
        assert await inbox.claim(conn, "c2", message_id) is True


async def test_claim_rolls_back_with_the_effect(pool) -> None:
    message_id = uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            assert await inbox.claim(conn, "c1", message_id)
            raise RuntimeError("effect failed")
    async with pool.acquire() as conn:
        assert await inbox.claim(conn, "c1", message_id) is True


async def test_migrations_apply_once_under_concurrent_starts(db_settings, schema) -> None:
    extra = [
        Migration("svc", 1, "things", "CREATE TABLE things (id int PRIMARY KEY)"),
        Migration("svc", 2, "more", "ALTER TABLE things ADD COLUMN name text"),
    ]
    conns = [await asyncpg.connect(db_settings.url) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(migrate(c, schema, common_migrations() + extra) for c in conns)
        )
        applied = [r for r in results if r]
        assert len(applied) == 1
        common = [f"common/{m.version:04d}_{m.name}" for m in common_migrations()]
        assert common[0] == "common/0001_inbox_outbox"
        assert applied[0] == [*common, "svc/0001_things", "svc/0002_more"]
        assert await migrate(conns[0], schema, common_migrations() + extra) == []
        cols = await conns[0].fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = 'things' ORDER BY column_name",
            schema,
        )
        assert [c["column_name"] for c in cols] == ["id", "name"]
    finally:
        await conns[0].execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        for c in conns:
            await c.close()


async def test_failed_migration_leaves_nothing_half_applied(db_settings, schema) -> None:
    bad = [Migration("svc", 1, "bad", "CREATE TABLE a (id int); CREATE TABLE a (id int)")]
    conn = await asyncpg.connect(db_settings.url)
    try:
        with pytest.raises(asyncpg.DuplicateTableError):
            await migrate(conn, schema, bad)
        assert await conn.fetchval("SELECT to_regclass($1)", f"{schema}.a") is None
        assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".schema_migrations') == 0
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
