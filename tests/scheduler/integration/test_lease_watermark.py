"""Leases expire by what the scheduler has read, not by the wall clock alone (DESIGN §5.10).

The clock is moved by hand and read marks are written by hand, so an outage is a stretch of
time in which no mark past the deadline is read: heartbeats delayed by it still renew the
lease, and only a mark read past the deadline with no heartbeat before it expires it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer

from sous_common.kafka import aiokafka_options
from sous_contracts import decode_message
from sous_contracts.steps import CancelStep, ExecuteStep, StepHeartbeat, StepStarted
from sous_contracts.topics import STEP_COMMANDS
from tests.scheduler.integration.conftest import (
    publish_registry,
    recipe,
    run_scheduler,
    taken_in,
)
from tests.scheduler.integration.test_runs import start
from tests.scheduler.integration.test_schedules import Clock
from tests.scheduler.standins import send

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def next_command(consumer: AIOKafkaConsumer, kind: type) -> object:
    async with asyncio.timeout(30):
        while True:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    m = decode_message(r.value)
                    if isinstance(m, kind):
                        return m


async def marked_through(service, at: datetime) -> None:
    """Write marks and wait until every partition is read through `at` (the barrier)."""
    await service.mark_step_events()
    async with asyncio.timeout(20):
        while (await service.rt.pool.fetchval("SELECT min(read_through) FROM read_marks")) < at:
            await asyncio.sleep(0.02)


async def lease_due(service) -> datetime | None:
    due: datetime | None = await service.rt.pool.fetchval(
        "SELECT due_at FROM timers WHERE kind = 'lease'"
    )
    return due


async def test_a_lease_outlives_an_outage_and_expires_only_when_read_past(
    kafka_settings, servers, schema
) -> None:
    clock = Clock(datetime.now(UTC))
    async with run_scheduler(
        kafka_settings,
        servers,
        schema,
        clock,
        mark_interval_s=3600,  # marks by hand only
        heartbeat_interval_s=1,
        lease_factor=3,
    ) as service:
        await publish_registry(
            kafka_settings, service, [recipe("a", "hold", {"one": {"run": {"kind": "noop"}}})]
        )
        commands = AIOKafkaConsumer(
            STEP_COMMANDS.full_name(kafka_settings.topic_prefix),
            **aiokafka_options(kafka_settings),
            group_id=None,
            auto_offset_reset="earliest",
        )
        await commands.start()
        try:
            await send(kafka_settings, [start("a", "hold")])
            step = await next_command(commands, ExecuteStep)
            ids = {
                "order_run_id": step.order_run_id,
                "step_run_id": step.step_run_id,
                "attempt": 1,
                "worker_id": "w1",
            }
            started = StepStarted(step="one", **ids)
            await send(kafka_settings, [started])
            await taken_in(service.rt.pool, [started.message_id])
            deadline = await lease_due(service)
            assert deadline is not None

            # Outage: the clock passes the deadline while nothing newer is read.
            clock.now = deadline + timedelta(seconds=30)
            assert await service.fire_due_timers() == 0
            assert await lease_due(service) == deadline

            # The heartbeat sent during the outage is read before the mark behind it.
            beat = StepHeartbeat(**ids)
            await send(kafka_settings, [beat])
            await marked_through(service, clock.now)
            assert await service.fire_due_timers() == 0
            renewed = await lease_due(service)
            assert renewed is not None
            assert renewed > clock.now

            # No heartbeat, and the partitions are read past the deadline: the lease expires.
            clock.now = renewed + timedelta(seconds=1)
            await marked_through(service, clock.now)
            cancel = await next_command(commands, CancelStep)
            assert (cancel.step_run_id, cancel.reason) == (step.step_run_id, "lease expired")
        finally:
            await commands.stop()
