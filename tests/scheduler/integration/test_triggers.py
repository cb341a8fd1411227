"""Triggers on real Kafka and PostgreSQL: joins, any, coalescing, depth, kitchens, test outcomes."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sous_contracts.common import RunStatus, TestSummary
from sous_contracts.registry import EntityKind
from sous_contracts.runs import DomainRunCompleted
from sous_scheduler.triggers import Triggers
from tests.scheduler.integration.conftest import handled, publish_registry, recipe, run_scheduler
from tests.scheduler.integration.test_schedules import Clock
from tests.scheduler.standins import entity

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

NOOP = {"run": {"kind": "noop"}}


@pytest.fixture
async def scheduler(kafka_settings, servers, schema):
    # The cron loop as good as off: trigger windows end on the timers' cadence, not the cron's.
    async with run_scheduler(kafka_settings, servers, schema, cron_poll_s=3600) as service:
        yield service


def done(domain: str, kitchen: str = "prod", **kw) -> DomainRunCompleted:
    return DomainRunCompleted(
        domain=domain,
        recipe="make",
        variation="prod",
        kitchen=kitchen,
        status=RunStatus.SUCCEEDED,
        order_run_id=uuid.uuid4(),
        **kw,
    )


def follower(domain: str, *triggers: dict) -> object:
    return recipe(domain, "follow", {"x": NOOP}, triggers=list(triggers))


async def runs(service, domain: str) -> list:
    return list(
        await service.rt.pool.fetch(
            "SELECT id, kitchen, state, created_at FROM runs WHERE domain = $1 ORDER BY created_at",
            domain,
        )
    )


async def runs_eventually(service, domain: str, count: int, timeout: float = 20) -> list:
    async with asyncio.timeout(timeout):
        while len(found := await runs(service, domain)) < count:
            await asyncio.sleep(0.05)
    return found


async def test_at_least_and_any(kafka_settings, scheduler) -> None:
    three = [{"domain": "a"}, {"domain": "b"}, {"domain": "c"}]
    await publish_registry(
        kafka_settings,
        scheduler,
        [
            follower(
                "j", {"at_least": {"n": 2, "of": three}, "within": "10m", "variation": "prod"}
            ),
            follower("y", {"any": [{"domain": "b"}, {"domain": "c"}], "variation": "prod"}),
        ],
    )
    await handled(scheduler, [done("a")])
    assert await runs(scheduler, "j") == []
    assert await runs(scheduler, "y") == []
    await handled(scheduler, [done("b")])
    assert len(await runs_eventually(scheduler, "j", 1)) == 1
    assert len(await runs_eventually(scheduler, "y", 1)) == 1
    # The join was used up: one more upstream alone is not enough again.
    await handled(scheduler, [done("c")])
    assert len(await runs(scheduler, "j")) == 1
    assert len(await runs_eventually(scheduler, "y", 2)) == 2


async def test_coalesce_starts_one_run_after_the_window(kafka_settings, scheduler) -> None:
    await publish_registry(
        kafka_settings,
        scheduler,
        [
            follower(
                "k",
                {"on": {"domain": "a"}, "mode": "coalesce", "debounce": "2s", "variation": "prod"},
            )
        ],
    )
    events = [done("a") for _ in range(3)]
    await handled(scheduler, events)
    last = await scheduler.rt.pool.fetchval("SELECT max(received_at) FROM inbox")
    assert await runs(scheduler, "k") == []
    await runs_eventually(scheduler, "k", 1)
    assert await Triggers(scheduler).fire_coalesced() == 0, "the window fired once, and is gone"
    [run] = await runs(scheduler, "k")
    assert (run["created_at"] - last).total_seconds() >= 1.9
    firings = await scheduler.rt.pool.fetch("SELECT upstream_message_id FROM trigger_firings")
    assert [r["upstream_message_id"] for r in firings] == [events[-1].message_id]


async def test_depth_limit_and_test_outcomes(kafka_settings, scheduler) -> None:
    await publish_registry(
        kafka_settings,
        scheduler,
        [
            follower("d", {"on": {"domain": "a"}, "variation": "prod", "max_depth": 3}),
            follower("w", {"on": {"domain": "b", "tests": "warnings"}, "variation": "prod"}),
        ],
    )
    too_deep, ok = done("a", causation_depth=3), done("a", causation_depth=2)
    clean, warned = (
        done("b", tests=TestSummary(passed=2)),
        done("b", tests=TestSummary(passed=1, warnings=1)),
    )
    await handled(scheduler, [too_deep, clean])
    assert await runs(scheduler, "d") == []
    assert await runs(scheduler, "w") == []
    outcome = await scheduler.rt.pool.fetchval(
        "SELECT outcome FROM trigger_firings WHERE upstream_message_id = $1", too_deep.message_id
    )
    assert outcome == "refused: causation depth 4 > limit 3"
    await handled(scheduler, [ok, warned])
    [deep] = await runs_eventually(scheduler, "d", 1)
    assert '"causation_depth":3' in deep["state"].replace(" ", "")
    assert len(await runs_eventually(scheduler, "w", 1)) == 1


async def test_kitchens_stay_isolated_unless_crossed(kafka_settings, scheduler) -> None:
    await publish_registry(
        kafka_settings,
        scheduler,
        [
            follower("same", {"on": {"domain": "a"}, "variation": "prod"}),
            follower(
                "cross",
                {"on": {"domain": "a", "kitchen": "dev"}, "variation": "prod", "kitchen": "prod"},
            ),
        ],
    )
    await handled(scheduler, [done("a", kitchen="dev")])
    [same] = await runs_eventually(scheduler, "same", 1)
    [cross] = await runs_eventually(scheduler, "cross", 1)
    assert same["kitchen"] == "dev"
    assert cross["kitchen"] == "prod"


def in_kitchen(version, kitchen: str) -> object:
    """The recipe version as one applied into a kitchen."""
    return version.model_copy(
        update={"entity_id": f"{version.entity_id}@{kitchen}", "kitchen": kitchen}
    )


async def test_a_completion_fires_the_triggers_of_the_versions_its_kitchen_runs(
    kafka_settings, scheduler
) -> None:
    on_a = {"on": {"domain": "a"}, "variation": "prod"}
    base = recipe("f", "follow", {"base_step": NOOP}, triggers=[on_a])
    changed = recipe("f", "follow", {"sandbox_step": NOOP}, triggers=[on_a])
    await publish_registry(
        kafka_settings,
        scheduler,
        [
            entity(EntityKind.KITCHEN, "dev-alice", {"kitchen": "dev-alice", "parent": "dev"}),
            base,
            in_kitchen(changed, "dev-alice"),
            in_kitchen(follower("n", on_a), "dev-alice"),  # only in the sandbox
            follower("gone", on_a),
            in_kitchen(follower("gone"), "dev-alice"),  # the sandbox dropped the trigger
        ],
    )

    async def started(domain: str) -> list[tuple[str, list[str]]]:
        found = await scheduler.rt.pool.fetch(
            "SELECT kitchen, recipe_spec FROM runs WHERE domain = $1 ORDER BY created_at", domain
        )
        return [(r["kitchen"], sorted(json.loads(r["recipe_spec"])["steps"])) for r in found]

    # The firings commit with the event's inbox record: once handled, every run is there.
    await handled(scheduler, [done("a", kitchen="dev-alice")])
    assert await started("f") == [("dev-alice", ["sandbox_step"])]
    assert await started("n") == [("dev-alice", ["x"])]
    assert await started("gone") == []
    await handled(scheduler, [done("a", kitchen="dev")])
    assert await started("f") == [("dev-alice", ["sandbox_step"]), ("dev", ["base_step"])]
    assert await started("n") == [("dev-alice", ["x"])]
    assert await started("gone") == [("dev", ["x"])]


async def test_a_join_forgets_what_arrived_before_its_window(
    kafka_settings, servers, schema
) -> None:
    clock = Clock(datetime(2026, 1, 1, 10, 0, tzinfo=UTC))
    join = {"all": [{"domain": "a"}, {"domain": "b"}], "within": "10m", "variation": "prod"}
    async with run_scheduler(kafka_settings, servers, schema, clock, cron_poll_s=3600) as service:
        await publish_registry(kafka_settings, service, [follower("j", join)])
        await handled(service, [done("a")])
        clock.now += timedelta(minutes=10, seconds=1)
        await handled(service, [done("b")])
        assert await runs(service, "j") == [], "a arrived before the window"
        clock.now += timedelta(minutes=9)
        await handled(service, [done("a")])  # b is still inside the window
        [run] = await runs(service, "j")
        assert run["kitchen"] == "prod"


async def test_a_join_whose_sides_arrive_at_once_fires_once(kafka_settings, scheduler) -> None:
    """Two consumers (or replicas) taking in the two sides of a join at the same moment."""
    pairs = 8
    window = {"within": "10m", "variation": "prod"}
    joins = [
        follower(f"j{i}", {"all": [{"domain": f"a{i}"}, {"domain": f"b{i}"}], **window})
        for i in range(pairs)
    ]
    await publish_registry(kafka_settings, scheduler, joins)
    triggers = Triggers(scheduler)
    await asyncio.gather(
        *(triggers.on_completed(done(f"{side}{i}")) for i in range(pairs) for side in "ab")
    )
    for i in range(pairs):
        assert len(await runs(scheduler, f"j{i}")) == 1, f"join j{i} did not fire once"


async def test_two_batches_taking_the_sides_of_two_joins_in_opposite_orders_never_deadlock(
    kafka_settings, scheduler
) -> None:
    """Each batch holds a side of both joins: one locking them in its own order waits for
    the other, which waits for it (PostgreSQL then aborts one)."""
    window = {"within": "10m", "variation": "prod"}
    joins = [
        follower(f"j{n}", {"all": [{"domain": f"a{n}"}, {"domain": f"b{n}"}], **window})
        for n in range(2)
    ]
    await publish_registry(kafka_settings, scheduler, joins)
    triggers = Triggers(scheduler)
    for _ in range(3):
        await asyncio.gather(
            triggers.on_completed_many([done("a0"), done("a1")]),
            triggers.on_completed_many([done("b1"), done("b0")]),
        )
    for n in range(2):
        assert len(await runs(scheduler, f"j{n}")) == 3
