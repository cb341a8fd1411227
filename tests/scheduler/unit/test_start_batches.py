"""Order-run commands in batches on the fake store: one transaction, each command once."""

from __future__ import annotations

import uuid

from sous_contracts.backfills import BackfillRange, StartBackfill
from sous_contracts.common import RunStatus
from sous_contracts.runs import (
    CancelOrderRun,
    DomainRunCompleted,
    OrderRunFinished,
    OrderRunQueued,
    OrderRunRejected,
    OrderRunStarted,
)
from sous_contracts.steps import ExecuteStep
from tests.scheduler.integration.conftest import recipe
from tests.scheduler.world import NOOP, World, start

MAKE = recipe("a", "make", {"one": NOOP}, concurrency={"limit": 10})


async def test_a_batch_with_a_repeat_and_a_refusal_handles_each_command_once() -> None:
    world = World()
    await world.apply(MAKE)
    good, other, refused = start("a", "make"), start("a", "make"), start("a", "nope")
    await world.scheduler.start_many([good, good, refused, refused, other])
    await world.scheduler.start_many([good, refused])  # the whole batch redelivered
    assert [e.order_run_id for e in world.sent(OrderRunStarted)] == [
        good.order_run_id,
        other.order_run_id,
    ]
    assert len(world.sent(ExecuteStep)) == 2
    [rejected] = world.sent(OrderRunRejected)
    assert (rejected.order_run_id, rejected.reason) == (
        refused.order_run_id,
        "unknown recipe a/nope",
    )


async def test_runs_of_one_batch_are_admitted_one_after_the_other() -> None:
    world = World()
    await world.apply(
        recipe("a", "slow", {"one": NOOP}, concurrency={"limit": 2, "policy": "queue"})
    )
    commands = [start("a", "slow") for _ in range(4)]
    await world.scheduler.start_many(commands)
    started = [e.order_run_id for e in world.sent(OrderRunStarted)]
    assert started == [c.order_run_id for c in commands[:2]]
    queued = [(e.order_run_id, e.position) for e in world.sent(OrderRunQueued)]
    assert queued == [(commands[2].order_run_id, 1), (commands[3].order_run_id, 2)]


async def test_commands_of_a_batch_keep_their_order() -> None:
    world = World()
    await world.apply(MAKE)
    run, other = start("a", "make"), start("a", "make")
    early = CancelOrderRun(order_run_id=run.order_run_id, reason="before it exists")
    late = CancelOrderRun(order_run_id=other.order_run_id, reason="after it started")
    backfill = StartBackfill(
        backfill_id=uuid.uuid4(),
        domain="a",
        recipe="make",
        variation="prod",
        range=BackfillRange(param="day", start="2026-11-01", end="2026-11-02"),
    )
    handed_on: list[object] = []

    async def hand_on(command: object) -> None:
        handed_on.append(command)

    await world.scheduler.on_commands([early, run, other, backfill, late], hand_on)
    [refused] = world.sent(OrderRunRejected)
    assert refused.order_run_id == run.order_run_id  # the cancel came before its run
    [ended] = world.sent(OrderRunFinished)
    assert ended.order_run_id == other.order_run_id
    assert len(world.sent(OrderRunStarted)) == 2
    assert handed_on == [backfill]


async def test_completions_of_one_batch_fire_their_triggers_once_each() -> None:
    world = World()
    follow = recipe(
        "b",
        "follow",
        {"one": NOOP},
        triggers=[
            {"name": "after-a", "on": {"domain": "a", "recipe": "make"}, "variation": "prod"}
        ],
        concurrency={"limit": 10},
    )
    await world.apply(MAKE, follow)
    events = [
        DomainRunCompleted(
            order_run_id=start("a", "make").order_run_id,
            domain="a",
            recipe="make",
            kitchen="prod",
            variation="prod",
            status=RunStatus.SUCCEEDED,
        )
        for _ in range(2)
    ]
    await world.triggers.on_completed_many([events[0], events[0], events[1]])
    await world.triggers.on_completed_many(events)  # redelivered
    assert len(world.sent(OrderRunStarted)) == 2
