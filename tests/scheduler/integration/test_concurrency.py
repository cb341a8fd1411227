"""Concurrency limits of a variation on real servers: queue, cancel-new, cancel-running."""

from __future__ import annotations

import asyncio

import pytest

from sous_contracts.common import RunStatus
from sous_contracts.runs import OrderRunQueued, OrderRunStarted
from sous_contracts.topics import STEP_EVENTS
from tests.consumer_groups import owned_by
from tests.scheduler.integration.conftest import publish_registry, recipe, run_scheduler
from tests.scheduler.integration.test_runs import finished, run_events, start
from tests.scheduler.standins import send, standins

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

NOOP = {"run": {"kind": "noop"}}


def started(events, order_run_id) -> bool:
    return any(isinstance(e, OrderRunStarted) and e.order_run_id == order_run_id for e in events)


async def two_runs(kafka_settings, scheduler, policy: str, on_variation: bool = False):
    """Start a first run, wait until it runs, then a second; return all events and the two."""
    limit = {"concurrency": {"limit": 1, "policy": policy}}
    extra = {"variations": {"prod": {"kitchen": "prod", **limit}}} if on_variation else dict(limit)
    await publish_registry(kafka_settings, scheduler, [recipe("a", "slow", {"one": NOOP}, **extra)])
    first, second = start("a", "slow"), start("a", "slow")
    async with standins(kafka_settings, delay_s=1.5):
        await send(kafka_settings, [first])
        await run_events(kafka_settings, lambda s: started(s, first.order_run_id))
        await send(kafka_settings, [second])
        events = await run_events(kafka_settings, lambda s: len(finished(s)) >= 2)
    return events, first.order_run_id, second.order_run_id


async def test_queue_starts_the_second_after_the_first(kafka_settings, scheduler) -> None:
    events, first, second = await two_runs(kafka_settings, scheduler, "queue", on_variation=True)
    queued = [e for e in events if isinstance(e, OrderRunQueued)]
    assert [e.order_run_id for e in queued] == [second]
    done = {e.order_run_id: e for e in finished(events)}
    assert done[first].status is RunStatus.SUCCEEDED
    assert done[second].status is RunStatus.SUCCEEDED
    second_started = next(
        e for e in events if isinstance(e, OrderRunStarted) and e.order_run_id == second
    )
    assert second_started.occurred_at >= done[first].occurred_at
    assert sum(isinstance(e, OrderRunStarted) for e in events) == 2


async def test_cancel_new_refuses_the_second(kafka_settings, scheduler) -> None:
    events, first, second = await two_runs(kafka_settings, scheduler, "cancel-new")
    done = {e.order_run_id: e for e in finished(events)}
    assert done[first].status is RunStatus.SUCCEEDED
    assert done[second].status is RunStatus.CANCELLED
    assert "concurrency limit 1 reached" in (done[second].reason or "")
    assert not started(events, second)


async def test_cancel_running_cancels_the_first(kafka_settings, scheduler) -> None:
    events, first, second = await two_runs(kafka_settings, scheduler, "cancel-running")
    done = {e.order_run_id: e for e in finished(events)}
    assert done[first].status is RunStatus.CANCELLED
    assert str(second) in (done[first].reason or "")
    assert done[second].status is RunStatus.SUCCEEDED
    assert sum(isinstance(e, OrderRunStarted) and e.order_run_id == second for e in events) == 1


async def test_every_freed_slot_goes_to_exactly_one_queued_run(
    kafka_settings, servers, schema, scheduler
) -> None:
    """200 runs at limit 10, answered in bursts so runs end together on every partition, each
    partition's step events read by its own replica: in every committed state, a run waits in
    the queue only while 10 run."""
    limit = {"concurrency": {"limit": 10, "policy": "queue"}}
    await publish_registry(kafka_settings, scheduler, [recipe("a", "busy", {"one": NOOP}, **limit)])
    commands = [start("a", "busy") for _ in range(200)]
    seen: list[tuple[int, int]] = []

    async def watch() -> None:
        while True:
            running, queued = await scheduler.rt.pool.fetchrow(
                "SELECT count(*) FILTER (WHERE phase = 'running'),"
                " count(*) FILTER (WHERE phase = 'queued') FROM runs WHERE recipe = 'busy'"
            )
            seen.append((running, queued))
            await asyncio.sleep(0.01)

    prefix = kafka_settings.topic_prefix
    async with run_scheduler(kafka_settings, servers, schema, keep_schema=True):
        await owned_by(kafka_settings, f"{prefix}sous-scheduler", STEP_EVENTS.full_name(prefix), 2)
        watcher = asyncio.create_task(watch())
        try:
            async with standins(kafka_settings, delay_s=0.3):
                await send(kafka_settings, commands)
                events = await run_events(kafka_settings, lambda s: len(finished(s)) >= 200, 240)
        finally:
            watcher.cancel()
    done = finished(events)
    assert {e.order_run_id for e in done} == {c.order_run_id for c in commands}
    assert all(e.status is RunStatus.SUCCEEDED for e in done)
    assert max(running for running, _ in seen) == 10
    starved = [(running, queued) for running, queued in seen if queued and running != 10]
    assert starved == [], f"a slot was lost: {starved[:5]}"
    assert any(queued > 0 for _, queued in seen)
