"""The scheduler's purge timer is durable: a restart neither skips a due purge nor repeats
one before its interval has passed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.scheduler.integration.conftest import drop, run_scheduler

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def purged_once(service) -> datetime:
    """Wait until this scheduler has a completed purge on record; return when it finished."""
    async with asyncio.timeout(20):
        while (
            last := await service.rt.pool.fetchval("SELECT last_finished_at FROM retention_timer")
        ) is None:
            await asyncio.sleep(0.05)
    return last


async def checked(service, times: int) -> None:
    """Wait until this replica has looked at the timer `times` times (a barrier)."""
    async with asyncio.timeout(20):
        while service.rt.purger.checks < times:
            await asyncio.sleep(0.02)


async def test_purge_timer_survives_a_restart(kafka_settings, servers, schema, monkeypatch):
    monkeypatch.setenv("SOUS_RETENTION_RUNS_DAYS", "10")
    monkeypatch.setenv("SOUS_RETENTION_CHECK_S", "0.05")
    monkeypatch.setenv("SOUS_RETENTION_INTERVAL_S", "3600")
    old_run = uuid.uuid4()
    try:
        async with run_scheduler(kafka_settings, servers, schema, keep_schema=True) as service:
            first = await purged_once(service)  # a fresh schema purges at once
            await service.rt.pool.execute(
                "INSERT INTO runs (id, domain, recipe, variation, kitchen, phase, state,"
                " recipe_spec, updated_at) VALUES ($1, 'd', 'r', 'prod', 'prod', 'succeeded',"
                " '{}', '{}', $2)",
                old_run,
                datetime.now(UTC) - timedelta(days=20),
            )

        # Restarted within the interval: the timer is not due, the old run stays.
        async with run_scheduler(kafka_settings, servers, schema, keep_schema=True) as service:
            await checked(service, 3)
            assert (
                await service.rt.pool.fetchval("SELECT last_finished_at FROM retention_timer")
                == first
            )
            assert (
                await service.rt.pool.fetchval("SELECT count(*) FROM runs WHERE id = $1", old_run)
                == 1
            )
            # The interval passes while the scheduler is down.
            await service.rt.pool.execute(
                "UPDATE retention_timer SET due_at = now() - interval '1 minute'"
            )

        async with run_scheduler(kafka_settings, servers, schema, keep_schema=True) as service:
            # The timer records a purge once every rule has run: wait for that, not for the
            # old run to go (the runs rule deletes it before the rules after it are done).
            async with asyncio.timeout(20):
                while (
                    await service.rt.pool.fetchval("SELECT last_finished_at FROM retention_timer")
                    == first
                ):
                    await asyncio.sleep(0.05)
            assert (
                await service.rt.pool.fetchval("SELECT count(*) FROM runs WHERE id = $1", old_run)
                == 0
            )
            due = await service.rt.pool.fetchval("SELECT due_at FROM retention_timer")
            assert due > datetime.now(UTC) + timedelta(minutes=50)  # the next one is planned
    finally:
        await drop(servers, schema)
