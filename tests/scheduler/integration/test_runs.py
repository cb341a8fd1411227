"""The scheduler on real Kafka and PostgreSQL: runs, chains, joins, refusals, dedup."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer

from sous_common.kafka import aiokafka_options
from sous_contracts import decode_message
from sous_contracts.common import RunStatus, StepStatus
from sous_contracts.registry import EntityKind
from sous_contracts.runs import (
    CancelOrderRun,
    DomainRunCompleted,
    OrderRunFinished,
    OrderRunRejected,
    StartOrderRun,
)
from sous_contracts.topics import DOMAIN_EVENTS, RUN_EVENTS, STEP_EVENTS, TEST_RESULTS
from sous_scheduler.adapters import postgres as db
from tests.scheduler.integration.conftest import handled, publish_registry, recipe
from tests.scheduler.standins import entity, send, standins

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

NOOP = {"run": {"kind": "noop"}}
TESTED = {
    "run": {"kind": "noop"},
    "tests": [
        {"name": "rows", "check": {"kind": "metric", "output": "rows", "op": ">", "value": 0}}
    ],
}


async def run_events(settings, until, timeout: float = 30, topic: str = "run") -> list:
    source = {"test": TEST_RESULTS, "domain": DOMAIN_EVENTS, "step": STEP_EVENTS}.get(
        topic, RUN_EVENTS
    )
    return await read_topics(settings, [source], until, timeout)


async def read_topics(settings, topics: list, until, timeout: float = 30) -> list:
    """Read catalog topics from their start, decoded, until `until(messages)` holds."""
    consumer = AIOKafkaConsumer(
        *(t.full_name(settings.topic_prefix) for t in topics),
        **aiokafka_options(settings),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list = []
    # The deadline is also checked by hand: a cancel that lands in aiokafka's wait may be
    # swallowed there, and the timeout's one cancel with it.
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        async with asyncio.timeout(timeout):
            while not until(seen):
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"not seen within {timeout} s; seen {len(seen)} messages")
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    seen.extend(decode_message(r.value) for r in records)
    finally:
        await consumer.stop()
    return seen


def finished(events) -> list[OrderRunFinished]:
    return [e for e in events if isinstance(e, OrderRunFinished)]


def start(domain: str, recipe_name: str, **kw) -> StartOrderRun:
    return StartOrderRun(
        order_run_id=uuid.uuid4(), domain=domain, recipe=recipe_name, variation="prod", **kw
    )


def behind(commands: list[StartOrderRun]) -> list[CancelOrderRun]:
    """Sentinels behind the commands on their partitions: cancels, sent once the runs ended."""
    return [CancelOrderRun(order_run_id=c.order_run_id, reason="barrier") for c in commands]


def failed(domain: str) -> DomainRunCompleted:
    """A sentinel behind a domain's completions on their partition; no trigger takes it."""
    return DomainRunCompleted(
        domain=domain, recipe="make", kitchen="prod", status=RunStatus.FAILED, external=True
    )


async def all_runs(service) -> list[str]:
    rows = await service.rt.pool.fetch("SELECT domain, recipe FROM runs")
    return sorted(f"{r['domain']}/{r['recipe']}" for r in rows)


async def test_chain_and_join_across_domains_run_once_each(kafka_settings, scheduler) -> None:
    await publish_registry(
        kafka_settings,
        scheduler,
        [
            recipe("a", "make", {"one": NOOP, "two": {**TESTED, "needs": ["one"]}}),
            recipe("c", "make", {"one": NOOP}),
            recipe(
                "b",
                "follow",
                {"x": TESTED},
                triggers=[
                    {
                        "on": {"domain": "a", "recipe": "make"},
                        "variation": "prod",
                        "params": {"upstream": "${event.outputs.step}"},
                    }
                ],
                params={"upstream": {}},
            ),
            recipe(
                "d",
                "join",
                {"x": NOOP},
                triggers=[
                    {
                        "all": [{"domain": "a"}, {"domain": "c"}],
                        "within": "10m",
                        "variation": "prod",
                    }
                ],
            ),
        ],
    )
    commands = [start("a", "make"), start("c", "make")]
    async with standins(kafka_settings):
        # Every command twice: duplicates must change nothing.
        await send(kafka_settings, commands, copies=2)
        events = await run_events(kafka_settings, lambda s: len(finished(s)) >= 4)
        await handled(scheduler, [*behind(commands), failed("a"), failed("c")])
    assert await all_runs(scheduler) == ["a/make", "b/follow", "c/make", "d/join"]
    done = finished(events)
    assert sorted(f"{e.domain}/{e.recipe}" for e in done) == [
        "a/make",
        "b/follow",
        "c/make",
        "d/join",
    ]
    assert all(e.status is RunStatus.SUCCEEDED for e in done)
    follow = next(e for e in done if e.domain == "b")
    assert follow.tests.passed == 1
    started = [e for e in events if e.type == "OrderRunStarted" and e.domain == "b"]
    assert started[0].params == {"upstream": "two"}


async def test_unknown_things_are_rejected_with_reasons(kafka_settings, scheduler) -> None:
    await publish_registry(
        kafka_settings,
        scheduler,
        [recipe("a", "make", {"one": NOOP}, params={"day": {"type": "date", "required": True}})],
    )
    commands = [
        start("a", "nope"),
        StartOrderRun(order_run_id=uuid.uuid4(), domain="a", recipe="make", variation="canary"),
        start("a", "make", params={"day": "2026-01-01", "dya": 1}),
        start("a", "make"),
        start("a", "make", kitchen="moon", params={"day": "2026-01-01"}),
    ]
    await send(kafka_settings, commands)
    events = await run_events(
        kafka_settings, lambda s: sum(isinstance(e, OrderRunRejected) for e in s) >= 5
    )
    reasons = {e.order_run_id: e.reason for e in events if isinstance(e, OrderRunRejected)}
    assert reasons[commands[0].order_run_id] == "unknown recipe a/nope"
    assert "unknown variation 'canary'" in reasons[commands[1].order_run_id]
    assert "undeclared param(s) ['dya']" in reasons[commands[2].order_run_id]
    assert "missing required param(s) ['day']" in reasons[commands[3].order_run_id]
    assert "unknown kitchen 'moon'" in reasons[commands[4].order_run_id]


async def test_a_kitchen_still_on_its_way_is_caught_up_before_refusing(
    kafka_settings, scheduler
) -> None:
    # A sandbox's provisioning run may be handled before the sandbox's changelog record.
    await publish_registry(kafka_settings, scheduler, [recipe("a", "make", {"one": NOOP})])
    sandbox = entity(EntityKind.KITCHEN, "dev-new", {"kitchen": "dev-new", "parent": "dev"})
    catch_ups: list[str] = []

    async def catch_up() -> int:
        # What reading the changelog to its end finds: the kitchen, published just before.
        catch_ups.append(sandbox.entity_id)
        async with scheduler.rt.pool.acquire() as conn:
            await db.upsert_entity(conn, sandbox)
        return 1

    scheduler.refresh_registry = catch_up
    cmd = StartOrderRun(order_run_id=uuid.uuid4(), domain="a", recipe="make", kitchen="dev-new")
    await scheduler.start(cmd)
    kitchen = await scheduler.rt.pool.fetchval(
        "SELECT kitchen FROM runs WHERE id = $1", cmd.order_run_id
    )
    assert (kitchen, catch_ups) == ("dev-new", ["kitchen:dev-new"])


async def test_a_kitchens_parent_still_on_its_way_is_caught_up_before_refusing(
    kafka_settings, scheduler
) -> None:
    # The variation's kitchen is known but its parent is not yet: the run names neither.
    lab = {"variations": {"lab": {"kitchen": "lab"}}}
    await publish_registry(
        kafka_settings,
        scheduler,
        [
            entity(EntityKind.KITCHEN, "lab", {"kitchen": "lab", "parent": "lab-root"}),
            recipe("a", "make", {"one": NOOP}, **lab),
        ],
    )
    root = entity(EntityKind.KITCHEN, "lab-root", {"kitchen": "lab-root"})
    catch_ups: list[str] = []

    async def catch_up() -> int:
        catch_ups.append(root.entity_id)
        async with scheduler.rt.pool.acquire() as conn:
            await db.upsert_entity(conn, root)
        return 1

    scheduler.refresh_registry = catch_up
    cmd = StartOrderRun(order_run_id=uuid.uuid4(), domain="a", recipe="make", variation="lab")
    await scheduler.start(cmd)
    kitchen = await scheduler.rt.pool.fetchval(
        "SELECT kitchen FROM runs WHERE id = $1", cmd.order_run_id
    )
    assert (kitchen, catch_ups) == ("lab", ["kitchen:lab-root"])


async def test_idempotency_key_gives_one_run(kafka_settings, scheduler) -> None:
    await publish_registry(kafka_settings, scheduler, [recipe("a", "make", {"one": NOOP})])
    commands = [start("a", "make", idempotency_key="k1") for _ in range(3)]
    async with standins(kafka_settings):
        await send(kafka_settings, commands)
        events = await run_events(kafka_settings, lambda s: len(finished(s)) >= 1)
        await handled(scheduler, behind(commands))
    assert len(finished(events)) == 1
    assert await all_runs(scheduler) == ["a/make"]


async def test_error_test_stops_the_run_and_skips_the_rest(kafka_settings, scheduler) -> None:
    await publish_registry(
        kafka_settings,
        scheduler,
        [recipe("a", "make", {"one": TESTED, "two": {**NOOP, "needs": ["one"]}})],
    )
    async with standins(kafka_settings, blocking_tests={"rows"}) as seen:
        await send(kafka_settings, [start("a", "make")])
        events = await run_events(kafka_settings, lambda s: len(finished(s)) >= 1)
    (end,) = finished(events)
    assert end.status is RunStatus.FAILED
    assert end.reason == "step 'one' failed: error test(s) failed: rows"
    assert [m.step for m in seen if m.type == "ExecuteStep"] == ["one"]


async def test_failed_step_is_retried_as_a_new_attempt(kafka_settings, scheduler) -> None:
    retried = {"run": {"kind": "noop"}, "retries": {"max": 2, "backoff": "100ms"}}
    await publish_registry(kafka_settings, scheduler, [recipe("a", "make", {"one": retried})])
    answer = lambda m: StepStatus.FAILED if m.attempt < 3 else StepStatus.SUCCEEDED  # noqa: E731
    async with standins(kafka_settings, answer) as seen:
        await send(kafka_settings, [start("a", "make")])
        events = await run_events(kafka_settings, lambda s: len(finished(s)) >= 1)
    assert finished(events)[0].status is RunStatus.SUCCEEDED
    assert [m.attempt for m in seen if m.type == "ExecuteStep"] == [1, 2, 3]


async def test_cancel_reaches_running_steps(kafka_settings, scheduler) -> None:
    await publish_registry(kafka_settings, scheduler, [recipe("a", "make", {"one": NOOP})])
    command = start("a", "make")
    await send(kafka_settings, [command])  # no executor: the step stays dispatched
    await run_events(kafka_settings, lambda s: any(e.type == "OrderRunStarted" for e in s))
    await send(kafka_settings, [CancelOrderRun(order_run_id=command.order_run_id, reason="oops")])
    events = await run_events(kafka_settings, lambda s: len(finished(s)) >= 1)
    (end,) = finished(events)
    assert (end.status, end.reason) == (RunStatus.CANCELLED, "oops")


async def test_a_parent_moves_on_when_its_nested_child_ends(kafka_settings, scheduler) -> None:
    # The parent learns of its child's end from the child's own run event.
    await publish_registry(
        kafka_settings,
        scheduler,
        [
            recipe("fin", "fx", {"rates": NOOP}),
            recipe(
                "a",
                "make",
                {"child": {"recipe": "fin/fx"}, "after": {**NOOP, "needs": ["child"]}},
            ),
            recipe("a", "broken", {"child": {"recipe": "fin/nope"}}),
        ],
    )
    good, refused = start("a", "make"), start("a", "broken")
    async with standins(kafka_settings) as seen:
        await send(kafka_settings, [good, refused])
        events = await run_events(
            kafka_settings,
            lambda s: (
                {e.order_run_id for e in finished(s)} >= {good.order_run_id, refused.order_run_id}
            ),
        )
    ends = {e.order_run_id: e for e in finished(events)}
    child = next(e for e in finished(events) if e.parent_order_run_id == good.order_run_id)
    assert (child.domain, child.recipe, child.status) == ("fin", "fx", RunStatus.SUCCEEDED)
    assert ends[good.order_run_id].status is RunStatus.SUCCEEDED
    steps = [m.step for m in seen if m.type == "ExecuteStep"]
    assert steps.count("rates") == 1
    assert steps.count("after") == 1
    assert steps.index("rates") < steps.index("after")
    assert ends[refused.order_run_id].status is RunStatus.FAILED
    assert "refused: unknown recipe fin/nope" in (ends[refused.order_run_id].reason or "")
