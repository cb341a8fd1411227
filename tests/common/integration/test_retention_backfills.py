"""Retention of backfills on real PostgreSQL: finished ones older than the setting go with
their partitions; newer ones, running ones and ones with a partition still open stay."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime

import pytest
from typer.testing import CliRunner

from sous.cli import app
from sous_common.retention import COMMON_RULES, Purger
from sous_console.adapters import retention as console_rules
from sous_domain_registry.adapters import retention as registry_rules
from sous_scheduler.adapters import retention as scheduler_rules
from tests.common.integration import test_retention
from tests.common.integration.test_retention import (
    CONSOLE,
    NEW,
    OLD,
    REGISTRY,
    SCHEDULER,
    SETTINGS,
    _migrated_pool,
    seed_common,
)

pytestmark = pytest.mark.postgres

service_pool = test_retention.service_pool
"""The fixture of the retention tests: a fresh schema migrated for one service."""

BACKFILLS = SETTINGS.model_copy(update={"backfills_days": 10})


async def left(conn, table: str, key: str) -> set[uuid.UUID]:
    return {r[0] for r in await conn.fetch(f"SELECT DISTINCT {key} FROM {table}")}


async def insert(conn, table: str, row: Mapping[str, object]) -> None:
    places = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    await conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({places})", *row.values())


async def seed_backfill(
    conn,
    status: str,
    at: datetime,
    *states: str,
    key: str = "backfill_id",
    row: Mapping[str, object] = {},
    partition: Callable[[int], Mapping[str, object]] = lambda _: {},
) -> uuid.UUID:
    """A backfill of sales/daily created at `at`, with a partition in each of `states`
    (one in `status` when none); `key` names the id column, `row` and `partition` add the
    columns a service's tables also require."""
    backfill_id = uuid.uuid4()
    base = {"domain": "sales", "recipe": "daily", "status": status}
    await insert(
        conn, "backfills", {key: backfill_id, **base, "created_at": at, "updated_at": at, **row}
    )
    for i, state in enumerate(states or (status,)):
        part = {"backfill_id": backfill_id, "key": str(i), "state": state, **partition(i)}
        await insert(conn, "backfill_partitions", part)
    return backfill_id


def purged(outcomes) -> dict[str, int]:
    return {o.name: o.rows for o in outcomes or [] if o.name == "backfills"}


@pytest.mark.parametrize("service_pool", [SCHEDULER], indirect=True)
async def test_scheduler_purges_old_finished_backfills_never_open_ones(
    service_pool, schema
) -> None:
    async def backfill(status: str, at: datetime, *states: str) -> uuid.UUID:
        return await seed_backfill(
            conn,
            status,
            at,
            *states,
            key="id",
            row={"variation": "dev", "kitchen": "dev", "command": "{}", "concurrency": 1},
            partition=lambda i: {"position": i, "value": json.dumps(i)},
        )

    async with service_pool.acquire() as conn:
        await seed_common(conn)
        for status in ("succeeded", "failed", "cancelled"):
            await backfill(status, OLD, "succeeded", "failed", "cancelled")
        keep = {
            await backfill("succeeded", NEW),
            await backfill("running", OLD, "succeeded", "running", "waiting"),  # live
            await backfill("cancelled", OLD, "cancelled", "running"),  # its cancel under way
        }
    purger = Purger(
        service_pool,
        schema=schema,
        rules=COMMON_RULES + scheduler_rules.RULES,
        settings=BACKFILLS,
    )
    assert purged(await purger.purge()) == {"backfills": 3}
    async with service_pool.acquire() as conn:
        assert await left(conn, "backfills", "id") == keep
        assert await left(conn, "backfill_partitions", "backfill_id") == keep


@pytest.mark.parametrize("service_pool", [REGISTRY], indirect=True)
async def test_registry_purges_old_ended_backfills_of_its_read_model(service_pool, schema) -> None:
    async def backfill(status: str, at: datetime) -> uuid.UUID:
        return await seed_backfill(conn, status, at, row={"range": "{}", "concurrency": 1})

    async with service_pool.acquire() as conn:
        for status in ("succeeded", "failed", "cancelled", "rejected"):
            await backfill(status, OLD)
        keep = {
            await backfill("failed", NEW),
            await backfill("running", OLD),
            await backfill("requested", OLD),
        }
    purger = Purger(
        service_pool,
        schema=schema,
        rules=COMMON_RULES + registry_rules.RULES,
        settings=BACKFILLS,
    )
    assert purged(await purger.purge()) == {"backfills": 4}
    async with service_pool.acquire() as conn:
        assert await left(conn, "backfills", "backfill_id") == keep
        assert await left(conn, "backfill_partitions", "backfill_id") == keep


@pytest.mark.parametrize("service_pool", [CONSOLE], indirect=True)
async def test_console_purges_old_ended_backfills_and_expired_joins(service_pool, schema) -> None:
    async with service_pool.acquire() as conn:
        for status in ("succeeded", "failed", "cancelled", "rejected"):
            await seed_backfill(conn, status, OLD)
        keep = {
            await seed_backfill(conn, "succeeded", NEW),
            await seed_backfill(conn, "running", OLD),
        }
        for at in (OLD, NEW):  # expired join windows are runs that ended
            await conn.execute(
                "INSERT INTO runs (order_run_id, status, finished_at)"
                " VALUES ($1, 'join-expired', $2)",
                uuid.uuid4(),
                at,
            )
    purger = Purger(
        service_pool,
        schema=schema,
        rules=COMMON_RULES + console_rules.RULES,
        settings=SETTINGS,  # the console's read model goes by SOUS_RETENTION_CONSOLE_DAYS
    )
    outcomes = {o.name: o.rows for o in await purger.purge() or []}
    assert (outcomes["backfills"], outcomes["runs"]) == (4, 1)
    async with service_pool.acquire() as conn:
        assert await left(conn, "backfills", "backfill_id") == keep
        assert await left(conn, "backfill_partitions", "backfill_id") == keep
        assert await conn.fetchval("SELECT finished_at FROM runs") == NEW


def test_purge_dry_run_lists_backfills(monkeypatch, db_settings, schema) -> None:
    async def migrated(drop: bool = False) -> None:
        pool = await _migrated_pool(db_settings, schema, *SCHEDULER)
        if drop:
            await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()

    asyncio.run(migrated())
    try:
        monkeypatch.setenv("SOUS_DATABASE_URL", db_settings.url)
        monkeypatch.setenv("SOUS_SCHEDULER_SCHEMA_NAME", schema)
        monkeypatch.setenv("SOUS_RETENTION_BACKFILLS_DAYS", "7")
        args = ["purge", "--dry-run", "--service", "scheduler", "--json"]
        done = CliRunner().invoke(app, args)
        assert done.exit_code == 0, done.output
        lines = [json.loads(line) for line in done.output.splitlines()]
        (backfills,) = [line for line in lines if line["record"] == "backfills"]
        assert (backfills["rows"], backfills["kept_days"]) == (0, 7)
    finally:
        asyncio.run(migrated(drop=True))
