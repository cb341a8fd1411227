"""Order-run commands in batches on real Kafka and PostgreSQL: repeats, refusals, failures."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from sous_contracts.deadletter import DeadLetter
from sous_contracts.runs import CancelOrderRun, OrderRunRejected, OrderRunStarted
from sous_contracts.topics import DEAD_LETTERS, RUN_EVENTS
from tests.scheduler.integration.conftest import (
    publish_registry,
    recipe,
    run_scheduler,
    taken_in,
)
from tests.scheduler.integration.test_runs import read_topics, start
from tests.scheduler.standins import send

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

MAKE = recipe(
    "a", "make", {"one": {"run": {"kind": "noop"}}}, params={"day": {}}, concurrency={"limit": 9}
)


async def test_a_batch_with_a_repeat_and_a_refusal_starts_each_run_once(
    kafka_settings, scheduler
) -> None:
    await publish_registry(kafka_settings, scheduler, [MAKE])
    good = [start("a", "make", params={"day": str(i)}) for i in range(3)]
    refused = start("a", "nope")
    batch = [good[0], good[0], refused, good[1], refused, good[2]]
    await scheduler.start_many(batch)
    await scheduler.start_many(batch)  # the whole batch again, as after a crash
    # A barrier on the refused run's partition: every answer to it comes before this one.
    barrier = CancelOrderRun(order_run_id=refused.order_run_id, reason="barrier")
    await scheduler.cancel(barrier)
    events = await read_topics(
        kafka_settings,
        [RUN_EVENTS],
        lambda s: (
            any(getattr(e, "causation_id", None) == barrier.message_id for e in s)
            and sum(isinstance(e, OrderRunStarted) for e in s) >= 3
        ),
    )
    events = [e for e in events if getattr(e, "causation_id", None) != barrier.message_id]
    started = sorted(e.order_run_id for e in events if isinstance(e, OrderRunStarted))
    assert started == sorted(c.order_run_id for c in good)
    [rejected] = [e for e in events if isinstance(e, OrderRunRejected)]
    assert (rejected.order_run_id, rejected.reason) == (
        refused.order_run_id,
        "unknown recipe a/nope",
    )
    rows = await scheduler.rt.pool.fetchval("SELECT count(*) FROM runs")
    assert rows == 3


async def fail_storing(servers, schema: str, run_id: uuid.UUID) -> None:
    """Make storing one run raise, as any unforeseen failure of one command would."""
    conn = await asyncpg.connect(servers.database_url)
    try:
        await conn.execute(
            f"""
            CREATE FUNCTION "{schema}".fail_storing() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.id = '{run_id}' THEN RAISE EXCEPTION 'the test refuses this run'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER fail_storing BEFORE INSERT ON "{schema}".runs
                FOR EACH ROW EXECUTE FUNCTION "{schema}".fail_storing();
            """
        )
    finally:
        await conn.close()


async def test_a_command_that_fails_does_not_hold_up_the_others_of_its_batch(
    kafka_settings, servers, schema
) -> None:
    async with run_scheduler(kafka_settings, servers, schema, keep_schema=True) as service:
        await publish_registry(kafka_settings, service, [MAKE])
    bad = start("a", "make", params={"day": "0"})
    good = [start("a", "make", params={"day": str(i)}) for i in range(3)]
    await fail_storing(servers, schema, bad.order_run_id)
    # Sent while no scheduler runs, so the next one finds them all at once: one batch.
    await send(kafka_settings, [good[0], bad, good[1], good[2]])
    async with run_scheduler(kafka_settings, servers, schema) as service:
        await taken_in(service.rt.pool, [c.message_id for c in good], timeout=90)
        letters = await read_topics(
            kafka_settings, [DEAD_LETTERS], lambda s: any(isinstance(m, DeadLetter) for m in s)
        )
        runs = await service.rt.pool.fetch("SELECT id FROM runs")
    assert sorted(r["id"] for r in runs) == sorted(c.order_run_id for c in good)
    [letter] = letters
    assert letter.error_kind == "handler_error"
    assert str(bad.order_run_id) in letter.payload
