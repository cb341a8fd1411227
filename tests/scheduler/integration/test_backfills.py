"""Backfills on real Kafka and PostgreSQL: each partition once, bounded, retried, cancelled."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import asyncpg
import pytest

from sous_contracts.backfills import (
    BackfillRange,
    BackfillRejected,
    BackfillStatus,
    BackfillUpdated,
    CancelBackfill,
    RetryBackfill,
    StartBackfill,
)
from sous_contracts.common import StepStatus
from sous_contracts.envelope import Envelope
from sous_contracts.registry import EntityKind
from sous_contracts.runs import OrderRunFinished, OrderRunStarted
from sous_contracts.steps import ExecuteStep
from tests.scheduler.integration.conftest import KITCHENS, handled, publish_registry, recipe
from tests.scheduler.integration.test_runs import failed, run_events
from tests.scheduler.processes import database, scheduler_process, stop
from tests.scheduler.standins import entity, send, standins

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

NOOP = {"run": {"kind": "noop"}}
DAILY = recipe(
    "a", "daily", {"load": NOOP}, params={"day": {"required": True}}, concurrency={"limit": 50}
)


def backfill(days: int, concurrency: int, **kw) -> StartBackfill:
    end = f"2026-11-{days:02d}"
    return StartBackfill(
        backfill_id=uuid.uuid4(),
        domain="a",
        recipe="daily",
        variation="prod",
        range=BackfillRange(param="day", start="2026-11-01", end=end),
        concurrency=concurrency,
        **kw,
    )


def updates(events: list[Envelope], backfill_id: uuid.UUID) -> list[BackfillUpdated]:
    return [e for e in events if isinstance(e, BackfillUpdated) and e.backfill_id == backfill_id]


def ended_as(backfill_id: uuid.UUID, status: BackfillStatus, count: int = 1):
    def until(events: list[Envelope]) -> bool:
        return sum(u.status is status for u in updates(events, backfill_id)) >= count

    return until


def unique(events: list[Envelope]) -> list[Envelope]:
    """Drop republished copies (the outbox publishes at least once)."""
    return list({e.message_id: e for e in events}.values())


def most_at_once(events: list[Envelope], backfill_id: uuid.UUID) -> int:
    """The most runs of the backfill running at one time, from their start and end events."""
    marks = [
        (e.occurred_at, 1 if isinstance(e, OrderRunStarted) else -1)
        for e in unique(events)
        if isinstance(e, OrderRunStarted | OrderRunFinished) and e.backfill_id == backfill_id
    ]
    running = most = 0
    for _, step in sorted(marks):  # at equal times, an end (-1) sorts before a start
        running += step
        most = max(most, running)
    return most


def starts(events: list[Envelope], backfill_id: uuid.UUID) -> list[OrderRunStarted]:
    return [
        e for e in unique(events) if isinstance(e, OrderRunStarted) and e.backfill_id == backfill_id
    ]


@pytest.fixture
async def drop_schema(servers, schema):
    yield schema
    conn = await asyncpg.connect(servers.database_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.mark.e2e
async def test_each_partition_runs_once_through_repeats_and_a_sigkill(
    kafka_settings, servers, drop_schema
) -> None:
    await send(kafka_settings, [*KITCHENS, entity(EntityKind.DOMAIN, "a", {"domain": "a"}), DAILY])
    cmd = backfill(10, 3)
    repeat = cmd.model_copy(update={"message_id": uuid.uuid4()})  # the same backfill, asked again
    proc = await scheduler_process(kafka_settings, servers, drop_schema)
    try:
        async with standins(kafka_settings, delay_s=0.3) as seen:
            await send(kafka_settings, [cmd], copies=2)
            await send(kafka_settings, [repeat])
            async with asyncio.timeout(60):
                while sum(isinstance(m, ExecuteStep) for m in seen) < 5:
                    await asyncio.sleep(0.05)
            proc.kill()  # SIGKILL with partitions running and waiting
            await proc.wait()
            proc = await scheduler_process(kafka_settings, servers, drop_schema)
            events = await run_events(
                kafka_settings, ended_as(cmd.backfill_id, BackfillStatus.SUCCEEDED), 120
            )
        async with database(servers, drop_schema) as conn:
            runs = await conn.fetchval("SELECT count(*) FROM runs")
    finally:
        await stop(proc)
    started = starts(events, cmd.backfill_id)
    days = Counter(s.params["day"] for s in started)
    assert days == Counter(f"2026-11-{d:02d}" for d in range(1, 11)), days
    assert len({s.order_run_id for s in started}) == 10
    assert runs == 10
    assert most_at_once(events, cmd.backfill_id) == 3
    final = updates(events, cmd.backfill_id)[-1]
    assert (final.counts.done, final.counts.total) == (10, 10)


async def test_retry_failed_reruns_only_the_failures(kafka_settings, scheduler) -> None:
    await publish_registry(kafka_settings, scheduler, [DAILY])
    bad = {"2026-11-02", "2026-11-04"}

    def answer(step: ExecuteStep) -> StepStatus:
        return StepStatus.FAILED if step.params.get("day") in bad else StepStatus.SUCCEEDED

    cmd = backfill(5, 2)
    async with standins(kafka_settings, answer=answer):
        await send(kafka_settings, [cmd])
        events = await run_events(kafka_settings, ended_as(cmd.backfill_id, BackfillStatus.FAILED))
        first = updates(events, cmd.backfill_id)[-1]
        assert (first.counts.done, first.counts.failed) == (3, 2)
        bad.clear()  # the cause is fixed
        await send(kafka_settings, [RetryBackfill(backfill_id=cmd.backfill_id)])
        events = await run_events(
            kafka_settings, ended_as(cmd.backfill_id, BackfillStatus.SUCCEEDED)
        )
    started = starts(events, cmd.backfill_id)
    assert len(started) == 7
    again = [s for s in started if s.order_run_id not in {x.order_run_id for x in started[:5]}]
    assert sorted(s.params["day"] for s in again) == ["2026-11-02", "2026-11-04"]
    final = updates(events, cmd.backfill_id)[-1]
    assert (final.counts.done, final.counts.failed) == (5, 0)


async def test_cancel_stops_running_and_waiting_partitions(kafka_settings, scheduler) -> None:
    await publish_registry(kafka_settings, scheduler, [DAILY])
    cmd = backfill(6, 2)
    async with standins(kafka_settings, delay_s=30) as seen:  # runs stay running
        await send(kafka_settings, [cmd])
        async with asyncio.timeout(30):
            while sum(isinstance(m, ExecuteStep) for m in seen) < 2:
                await asyncio.sleep(0.05)
        await send(kafka_settings, [CancelBackfill(backfill_id=cmd.backfill_id, reason="oops")])
        events = await run_events(
            kafka_settings, ended_as(cmd.backfill_id, BackfillStatus.CANCELLED)
        )
    final = updates(events, cmd.backfill_id)[-1]
    assert (final.counts.cancelled, final.counts.done, final.counts.running) == (6, 0, 0)
    assert len(starts(events, cmd.backfill_id)) == 2
    assert final.reason == "backfill cancelled: oops"


FOLLOW = recipe("b", "follow", {"x": NOOP}, triggers=[{"on": {"domain": "a"}, "variation": "prod"}])


async def test_downstream_triggers_fire_only_when_asked(kafka_settings, scheduler) -> None:
    await publish_registry(kafka_settings, scheduler, [DAILY, FOLLOW])
    quiet = backfill(2, 2)
    async with standins(kafka_settings):
        await send(kafka_settings, [quiet])
        await run_events(kafka_settings, ended_as(quiet.backfill_id, BackfillStatus.SUCCEEDED))
        # Behind the backfill's completions on domain a's partition; no trigger takes it.
        await handled(scheduler, [failed("a")])
        followers = "SELECT count(*) FROM runs WHERE domain = 'b'"
        assert await scheduler.rt.pool.fetchval(followers) == 0
        loud = backfill(1, 1, downstream=True)
        await send(kafka_settings, [loud])
        events = await run_events(
            kafka_settings,
            lambda s: any(isinstance(e, OrderRunFinished) and e.domain == "b" for e in s),
        )
    follow = [e for e in events if isinstance(e, OrderRunFinished) and e.domain == "b"]
    assert len(follow) == 1


def rejected(events: list[Envelope], backfill_id: uuid.UUID) -> list[str]:
    return [
        e.reason for e in events if isinstance(e, BackfillRejected) and e.backfill_id == backfill_id
    ]


async def test_refusals_name_what_is_wrong(kafka_settings, scheduler) -> None:
    await publish_registry(kafka_settings, scheduler, [DAILY])
    unknown_recipe = backfill(2, 1).model_copy(update={"recipe": "nope"})
    nobody = uuid.uuid4()
    mallory = backfill(2, 1, principal="mallory")
    done = backfill(1, 1)
    async with standins(kafka_settings):
        await send(kafka_settings, [done])
        await run_events(kafka_settings, ended_as(done.backfill_id, BackfillStatus.SUCCEEDED))
        await send(
            kafka_settings,
            [
                unknown_recipe,
                CancelBackfill(backfill_id=nobody),
                mallory,
                RetryBackfill(backfill_id=done.backfill_id),
                CancelBackfill(backfill_id=done.backfill_id),
            ],
        )
        expected = {
            unknown_recipe.backfill_id: "unknown recipe",
            nobody: f"no backfill {nobody}",
            mallory.backfill_id: "principal 'mallory' lacks scope 'run' on domain 'a'",
        }
        events = await run_events(
            kafka_settings,
            lambda s: (
                all(rejected(s, b) for b in expected) and len(rejected(s, done.backfill_id)) >= 2
            ),
        )
    for backfill_id, words in expected.items():
        assert words in rejected(events, backfill_id)[0], rejected(events, backfill_id)
    assert sorted(rejected(events, done.backfill_id)) == [
        f"backfill {done.backfill_id} has ended (succeeded)",
        f"backfill {done.backfill_id} has no failed partitions",
    ]
    assert await scheduler.rt.pool.fetchval("SELECT count(*) FROM backfills") == 1
