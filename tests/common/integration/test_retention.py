"""Retention on real PostgreSQL: each service's rules purge what is older than the setting,
nothing newer, and never a run that is still live; one replica purges at a time."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from typer.testing import CliRunner

from sous.cli import app
from sous_common.db import create_pool
from sous_common.migrate import common_migrations, load, migrate
from sous_common.retention import COMMON_RULES, Purger, RetentionSettings
from sous_console.adapters import retention as console_rules
from sous_domain_registry.adapters import retention as registry_rules
from sous_executor.adapters import retention as executor_rules
from sous_scheduler.adapters import retention as scheduler_rules
from sous_test_runner.adapters import retention as test_runner_rules

pytestmark = pytest.mark.postgres

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=20)
"""Older than every setting below."""
NEW = NOW - timedelta(days=5)
"""Newer than every setting below."""

SETTINGS = RetentionSettings(
    runs_days=10,
    attempts_days=10,
    inbox_days=10,
    outbox_days=10,
    test_history_days=10,
    firings_days=10,
    audit_days=10,
    console_days=10,
    batch_size=2,  # several batches per kind
)


async def _migrated_pool(db_settings, schema: str, component: str, package: str):
    conn = await asyncpg.connect(db_settings.url)
    try:
        await migrate(conn, schema, common_migrations() + load(component, package))
    finally:
        await conn.close()
    return await create_pool(db_settings, schema=schema)


@pytest.fixture
async def service_pool(request, db_settings, schema) -> AsyncIterator[asyncpg.Pool]:
    component, package = request.param
    pool = await _migrated_pool(db_settings, schema, component, package)
    yield pool
    await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await pool.close()


def ids(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


async def seed_common(conn) -> None:
    """Three old and one new row of the inbox and of the refused outbox rows."""
    for i, at in enumerate([OLD, OLD, OLD, NEW]):
        await conn.execute(
            "INSERT INTO inbox (consumer, message_id, received_at) VALUES ('c', $1, $2)",
            uuid.uuid4(),
            at,
        )
        await conn.execute(
            "INSERT INTO outbox_refused (id, message_id, topic, payload, headers, created_at,"
            " reason, refused_at) VALUES ($1, $2, 't', '\\x00', '{}', $3, 'too large', $3)",
            i,
            uuid.uuid4(),
            at,
        )


async def counts(conn, tables: list[str]) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in tables}


async def run_ids(conn, table: str) -> set[uuid.UUID]:
    return {r["order_run_id"] for r in await conn.fetch(f"SELECT order_run_id FROM {table}")}


SCHEDULER = ("scheduler", "sous_scheduler.migrations")


@pytest.mark.parametrize("service_pool", [SCHEDULER], indirect=True)
async def test_scheduler_purges_old_finished_runs_and_firings_only(service_pool, schema) -> None:
    async def run(phase: str, at: datetime, parent: uuid.UUID | None = None) -> uuid.UUID:
        run_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO runs (id, domain, recipe, variation, kitchen, phase, state, recipe_spec,"
            " parent_id, created_at, updated_at)"
            " VALUES ($1, 'd', 'r', 'prod', 'prod', $2, '{}', '{}', $3, $4, $4)",
            run_id,
            phase,
            parent,
            at,
        )
        await conn.execute(
            "INSERT INTO timers (order_run_id, kind, attempt, due_at) VALUES ($1, 'lease', 1, $2)",
            run_id,
            at,
        )
        return run_id

    async with service_pool.acquire() as conn:
        await seed_common(conn)
        old_done = [await run(p, OLD) for p in ("succeeded", "failed", "cancelled")]
        keep = {
            await run("succeeded", NEW),
            await run("running", OLD),  # live: never purged, however old
            await run("queued", OLD),
        }
        live_parent = await run("running", OLD)
        keep |= {live_parent, await run("failed", OLD, parent=live_parent)}
        ended_parent = await run("cancelled", OLD)
        keep |= {ended_parent, await run("running", OLD, parent=ended_parent)}
        for upstream, at in [(uuid.uuid4(), OLD), (uuid.uuid4(), OLD), (uuid.uuid4(), NEW)]:
            await conn.execute(
                "INSERT INTO trigger_firings (trigger_id, upstream_message_id, outcome, fired_at)"
                " VALUES ('t', $1, 'started', $2)",
                upstream,
                at,
            )
        fires = [("a", OLD), ("a", OLD + timedelta(hours=1)), ("a", NEW)]
        fires += [("b", OLD), ("b", OLD + timedelta(hours=1))]  # b's latest fire stays
        await conn.executemany(
            "INSERT INTO cron_fires (schedule_id, fire_time) VALUES ($1, $2)", fires
        )

    purger = Purger(
        service_pool,
        schema=schema,
        rules=COMMON_RULES + scheduler_rules.RULES,
        settings=SETTINGS,
    )
    preview = {o.name: o.rows for o in await purger.preview()}
    assert preview == {
        "inbox": 3,
        "outbox_refused": 3,
        "runs": 3,
        "trigger_firings": 2,
        "cron_fires": 3,
        "backfills": 0,  # tests/common/integration/test_retention_backfills.py
        "held_firings": 0,  # tests/common/integration/test_retention_monitors.py
        "monitor_health": 0,
    }
    outcomes = await purger.purge()
    assert outcomes is not None
    assert {o.name: o.rows for o in outcomes} == preview

    async with service_pool.acquire() as conn:
        left = {r["id"] for r in await conn.fetch("SELECT id FROM runs")}
        assert left == keep
        timers = {r["order_run_id"] for r in await conn.fetch("SELECT order_run_id FROM timers")}
        assert timers == keep  # the purged runs' timers went with them
        assert not set(old_done) & left
        fired = await conn.fetch("SELECT schedule_id, fire_time FROM cron_fires ORDER BY 1, 2")
        assert [(r["schedule_id"], r["fire_time"]) for r in fired] == [
            ("a", NEW),
            ("b", OLD + timedelta(hours=1)),
        ]
        assert await counts(conn, ["inbox", "outbox_refused", "trigger_firings"]) == {
            "inbox": 1,
            "outbox_refused": 1,
            "trigger_firings": 1,
        }
    # Nothing old is left: a second purge finds nothing.
    again = await purger.purge()
    assert again is not None
    assert all(o.rows == 0 for o in again)


REGISTRY = ("domain-registry", "sous_domain_registry.migrations")


@pytest.mark.parametrize("service_pool", [REGISTRY], indirect=True)
async def test_registry_purges_old_finished_runs_with_steps_and_audit(service_pool, schema) -> None:
    async def run(status: str, finished: datetime | None) -> uuid.UUID:
        run_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO runs (order_run_id, domain, recipe, status, started_at, finished_at)"
            " VALUES ($1, 'd', 'r', $2, $3, $4)",
            run_id,
            status,
            OLD,
            finished,
        )
        await conn.execute(
            "INSERT INTO run_steps (order_run_id, step, attempt, status) VALUES ($1, 's', 1, $2)",
            run_id,
            status,
        )
        await conn.execute(
            "INSERT INTO run_tests (order_run_id, step, test, kind, severity, status, at)"
            " VALUES ($1, 's', 't', 'metric', 'error', 'passed', $2)",
            run_id,
            OLD,
        )
        return run_id

    async with service_pool.acquire() as conn:
        await seed_common(conn)
        for _ in range(3):
            await run("succeeded", OLD)
        keep = {await run("failed", NEW), await run("running", None)}
        for at in (OLD, OLD, OLD, NEW):
            await conn.execute(
                "INSERT INTO audit (at, principal, action, target) VALUES ($1, 'p', 'a', 't')", at
            )

    purger = Purger(
        service_pool, schema=schema, rules=COMMON_RULES + registry_rules.RULES, settings=SETTINGS
    )
    assert {o.name: o.rows for o in await purger.purge() or []} == {
        "inbox": 3,
        "outbox_refused": 3,
        "runs": 3,
        "audit": 3,
        "backfills": 0,  # tests/common/integration/test_retention_backfills.py
        "dataset_uses": 0,  # tests/common/integration/test_retention_monitors.py
        "monitor_health": 0,
    }
    async with service_pool.acquire() as conn:
        for table in ("runs", "run_steps", "run_tests"):
            left = {
                r["order_run_id"] for r in await conn.fetch(f"SELECT order_run_id FROM {table}")
            }
            assert left == keep, table
        assert await counts(conn, ["inbox", "outbox_refused", "audit"]) == {
            "inbox": 1,
            "outbox_refused": 1,
            "audit": 1,
        }


EXECUTOR = ("executor", "sous_executor.migrations")


@pytest.mark.parametrize("service_pool", [EXECUTOR], indirect=True)
async def test_executor_purges_old_ended_attempts_never_running_ones(service_pool, schema) -> None:
    rows = [("succeeded", OLD, OLD)] * 3 + [("failed", NEW, NEW), ("running", OLD, None)]
    async with service_pool.acquire() as conn:
        await seed_common(conn)
        for status, taken, finished in rows:
            await conn.execute(
                "INSERT INTO attempts (step_run_id, attempt, order_run_id, step, worker_id,"
                " message_id, status, taken_at, finished_at)"
                " VALUES ($1, 1, $2, 's', 'w', $3, $4, $5, $6)",
                uuid.uuid4(),
                uuid.uuid4(),
                uuid.uuid4(),
                status,
                taken,
                finished,
            )
    purger = Purger(
        service_pool, schema=schema, rules=COMMON_RULES + executor_rules.RULES, settings=SETTINGS
    )
    assert {o.name: o.rows for o in await purger.purge() or []} == {
        "inbox": 3,
        "outbox_refused": 3,
        "attempts": 3,
    }
    async with service_pool.acquire() as conn:
        left = await conn.fetch("SELECT status FROM attempts ORDER BY status")
        assert [r["status"] for r in left] == ["failed", "running"]


TEST_RUNNER = ("test-runner", "sous_test_runner.migrations")


@pytest.mark.parametrize("service_pool", [TEST_RUNNER], indirect=True)
async def test_test_runner_purges_old_history(service_pool, schema) -> None:
    async with service_pool.acquire() as conn:
        await seed_common(conn)
        for at in (OLD, OLD, OLD, NEW):
            await conn.execute(
                "INSERT INTO test_history (domain, recipe, step, test, kitchen, kind, severity,"
                " status, order_run_id, suite_id, measured_at)"
                " VALUES ('d', 'r', 's', 't', 'prod', 'metric', 'error', 'passed', $1, $2, $3)",
                uuid.uuid4(),
                uuid.uuid4(),
                at,
            )
    purger = Purger(
        service_pool,
        schema=schema,
        rules=COMMON_RULES + test_runner_rules.RULES,
        settings=SETTINGS,
    )
    assert {o.name: o.rows for o in await purger.purge() or []} == {
        "inbox": 3,
        "outbox_refused": 3,
        "test_history": 3,
    }
    async with service_pool.acquire() as conn:
        assert await conn.fetchval("SELECT measured_at FROM test_history") == NEW


CONSOLE = ("console", "sous_console.migrations")


@pytest.mark.parametrize("service_pool", [CONSOLE], indirect=True)
async def test_console_purges_old_finished_runs_and_their_rows(service_pool, schema) -> None:
    async def run(status: str, finished: datetime | None) -> uuid.UUID:
        run_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO runs (order_run_id, status, started_at, finished_at)"
            " VALUES ($1, $2, $3, $4)",
            run_id,
            status,
            OLD,
            finished,
        )
        await conn.execute(
            "INSERT INTO steps (step_run_id, attempt, order_run_id, step, status)"
            " VALUES ($1, 1, $2, 's', $3)",
            uuid.uuid4(),
            run_id,
            status,
        )
        await conn.execute(
            "INSERT INTO test_results (message_id, order_run_id, step, test, kind, severity,"
            " status, domain, recipe, kitchen, occurred_at)"
            " VALUES ($1, $2, 's', 't', 'metric', 'error', 'passed', 'd', 'r', 'prod', $3)",
            uuid.uuid4(),
            run_id,
            OLD,
        )
        await completion(run_id, finished or OLD)
        return run_id

    async def completion(run_id: uuid.UUID | None, at: datetime) -> None:
        await conn.execute(
            "INSERT INTO completions (message_id, order_run_id, domain, recipe, kitchen, status,"
            " occurred_at) VALUES ($1, $2, 'd', 'r', 'prod', 'succeeded', $3)",
            uuid.uuid4(),
            run_id,
            at,
        )

    async with service_pool.acquire() as conn:
        await seed_common(conn)
        for _ in range(3):
            await run("succeeded", OLD)
        keep = {await run("failed", NEW), await run("running", None)}
        await completion(None, OLD)  # a domain run by another tool
        await completion(None, NEW)

    purger = Purger(
        service_pool, schema=schema, rules=COMMON_RULES + console_rules.RULES, settings=SETTINGS
    )
    assert {o.name: o.rows for o in await purger.purge() or []} == {
        "inbox": 3,
        "outbox_refused": 3,
        "runs": 3,
        "completions": 1,
        "backfills": 0,  # tests/common/integration/test_retention_backfills.py
    }
    async with service_pool.acquire() as conn:
        for table in ("runs", "steps", "test_results"):
            left = {
                r["order_run_id"] for r in await conn.fetch(f"SELECT order_run_id FROM {table}")
            }
            assert left == keep, table
        completions = await conn.fetch("SELECT order_run_id, occurred_at FROM completions")
        assert {r["order_run_id"] for r in completions} == {*keep, None}
        assert len(completions) == 3


async def test_one_replica_purges_at_a_time(pool, schema, db_settings) -> None:
    async with pool.acquire() as conn:
        await seed_common(conn)
    purger = Purger(pool, schema=schema, rules=COMMON_RULES, settings=SETTINGS)
    other = await asyncpg.connect(db_settings.url)
    try:
        assert await other.fetchval(
            "SELECT pg_try_advisory_lock(hashtext($1))", f"sous-retention:{schema}"
        )
        assert await purger.purge() is None  # another replica holds the lock
        assert await purger.tick() is False
        assert await pool.fetchval("SELECT count(*) FROM inbox") == 4
        await other.execute("SELECT pg_advisory_unlock_all()")
        assert await purger.tick() is True
        assert await pool.fetchval("SELECT count(*) FROM inbox") == 1
    finally:
        await other.close()


def test_purge_dry_run_counts_without_deleting(monkeypatch, db_settings, schema) -> None:
    # Synchronous: the command runs its own event loop, as it does in a shell.
    async def seed() -> None:
        pool = await _migrated_pool(db_settings, schema, *EXECUTOR)
        async with pool.acquire() as conn:
            await seed_common(conn)
        await pool.close()

    async def count(table: str) -> int:
        conn = await asyncpg.connect(db_settings.url)
        try:
            return int(await conn.fetchval(f'SELECT count(*) FROM "{schema}".{table}'))
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(db_settings.url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(seed())
    try:
        monkeypatch.setenv("SOUS_DATABASE_URL", db_settings.url)
        monkeypatch.setenv("SOUS_EXECUTOR_SCHEMA_NAME", schema)
        monkeypatch.setenv("SOUS_RETENTION_INBOX_DAYS", "10")
        monkeypatch.setenv("SOUS_RETENTION_OUTBOX_DAYS", "0")  # kept forever
        runner = CliRunner()

        def purge(*args: str) -> dict[str, int | None]:
            done = runner.invoke(app, ["purge", "--service", "executor", "--json", *args])
            assert done.exit_code == 0, done.output
            lines = [json.loads(line) for line in done.output.splitlines()]
            assert {line["schema"] for line in lines} == {schema}
            return {line["record"]: line["rows"] for line in lines}

        expected = {"inbox": 3, "outbox_refused": 0, "attempts": 0}
        assert purge("--dry-run") == expected
        assert purge("--dry-run") == expected  # nothing was deleted
        assert asyncio.run(count("inbox")) == 4
        assert purge() == expected
        assert asyncio.run(count("inbox")) == 1
        assert asyncio.run(count("outbox_refused")) == 4
    finally:
        asyncio.run(drop())
