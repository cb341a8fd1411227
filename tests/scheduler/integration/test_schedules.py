"""Cron schedules on real PostgreSQL: with a moved clock (baseline, one run per fire when ticks
race, downtime), and as two replica processes on the wall clock."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from sous_contracts.registry import EntityKind
from sous_scheduler.schedules import Schedules
from tests.scheduler.integration.conftest import KITCHENS, drop, publish_registry, run_scheduler
from tests.scheduler.processes import database, logged, scheduler_process, stop
from tests.scheduler.standins import entity, send

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

NOOP = {"run": {"kind": "noop"}}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def clock_and_scheduler(kafka_settings, servers, schema):
    clock = Clock(datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC))
    # The loop ticks once at start, before any recipe exists; the test ticks by hand.
    async with run_scheduler(kafka_settings, servers, schema, clock, cron_poll_s=3600) as service:
        yield clock, service


def scheduled(name: str, cron: str, missed: str = "skip") -> object:
    spec = {
        "recipe": name,
        "steps": {"one": NOOP},
        "variations": {"prod": {"kitchen": "prod", "schedule": {"cron": cron, "missed": missed}}},
    }
    return entity(EntityKind.RECIPE, name, spec, "s")


async def runs(service, name: str) -> int:
    return await service.rt.pool.fetchval("SELECT count(*) FROM runs WHERE recipe = $1", name)


async def test_one_run_per_fire_time_when_ticks_race(kafka_settings, clock_and_scheduler) -> None:
    clock, service = clock_and_scheduler
    await publish_registry(kafka_settings, service, [scheduled("minutely", "* * * * *")])
    ticks = [Schedules(service), Schedules(service)]
    await ticks[0].tick()
    assert await runs(service, "minutely") == 0
    baseline = await service.rt.pool.fetch("SELECT fire_time, order_run_id FROM cron_fires")
    assert [(r["fire_time"], r["order_run_id"]) for r in baseline] == [
        (datetime(2026, 1, 1, 10, 0, tzinfo=UTC), None)
    ]
    clock.now += timedelta(seconds=40)  # 10:01:10, one fire due
    await asyncio.gather(*(tick.tick() for tick in ticks))  # side by side
    for tick in ticks:  # and again, later
        await tick.tick()
    assert await runs(service, "minutely") == 1
    fired = await service.rt.pool.fetchrow(
        "SELECT r.idempotency_key, r.variation FROM cron_fires c JOIN runs r"
        " ON r.id = c.order_run_id WHERE c.fire_time = $1",
        datetime(2026, 1, 1, 10, 1, tzinfo=UTC),
    )
    assert fired["variation"] == "prod"
    assert fired["idempotency_key"] == "cron:s/minutely/prod@2026-01-01T10:01:00+00:00"


async def test_missed_fires_skip_or_run_once(kafka_settings, clock_and_scheduler) -> None:
    clock, service = clock_and_scheduler
    await publish_registry(
        kafka_settings,
        service,
        [scheduled("skipper", "0 * * * *"), scheduled("catcher", "0 * * * *", "run_once")],
    )
    schedules = Schedules(service)
    await schedules.tick()  # baseline 10:00
    clock.now += timedelta(hours=5, minutes=30)  # down until 15:30: fires 11:00 … 15:00 missed
    await schedules.tick()
    await schedules.tick()
    assert await runs(service, "skipper") == 0
    assert await runs(service, "catcher") == 1
    recorded = await service.rt.pool.fetch(
        "SELECT schedule_id, count(*), count(order_run_id) AS started FROM cron_fires"
        " GROUP BY schedule_id ORDER BY schedule_id"
    )
    assert [(r["schedule_id"], r["count"], r["started"]) for r in recorded] == [
        ("s/catcher/prod", 6, 1),
        ("s/skipper/prod", 6, 0),
    ]


def minutely(name: str, steps: list[str], kitchen: str | None = None, **variations) -> object:
    """A recipe of these noop steps and variations (name → kitchen) firing every minute."""
    spec = {
        "recipe": name,
        "steps": {step: NOOP for step in steps},
        "variations": {v: {"kitchen": k, "schedule": "* * * * *"} for v, k in variations.items()},
    }
    version = entity(EntityKind.RECIPE, name, spec, "s")
    if kitchen is None:
        return version
    return version.model_copy(
        update={"entity_id": f"{version.entity_id}@{kitchen}", "kitchen": kitchen}
    )


async def test_a_schedule_runs_the_version_of_its_variation_s_kitchen(
    kafka_settings, clock_and_scheduler
) -> None:
    clock, service = clock_and_scheduler
    alice = entity(EntityKind.KITCHEN, "dev-alice", {"kitchen": "dev-alice", "parent": "dev"})
    base = minutely("nightly", ["base_step"], prod="prod", dev="dev")
    # Alice's version copied the base's variations and added one in her sandbox.
    mine = minutely(
        "nightly", ["alice_step"], "dev-alice", prod="prod", dev="dev", alice=alice.name
    )
    trial = minutely("trial", ["try_step"], "dev-alice", alice=alice.name)  # only in the sandbox
    await publish_registry(kafka_settings, service, [alice, base, mine, trial])
    schedules = Schedules(service)
    await schedules.tick()  # baseline 10:00
    clock.now += timedelta(seconds=40)  # 10:01:10, one fire due
    await schedules.tick()
    await schedules.tick()
    started = await service.rt.pool.fetch(
        "SELECT recipe, variation, kitchen, recipe_spec FROM runs ORDER BY recipe, variation"
    )
    assert [
        (r["recipe"], r["variation"], r["kitchen"], sorted(json.loads(r["recipe_spec"])["steps"]))
        for r in started
    ] == [
        ("nightly", "alice", "dev-alice", ["alice_step"]),
        ("nightly", "dev", "dev", ["base_step"]),
        ("nightly", "prod", "prod", ["base_step"]),
        ("trial", "alice", "dev-alice", ["try_step"]),
    ]
    fired = await service.rt.pool.fetch(
        "SELECT DISTINCT schedule_id FROM cron_fires ORDER BY schedule_id"
    )
    assert [r["schedule_id"] for r in fired] == [
        "s/nightly/alice@dev-alice",
        "s/nightly/dev",
        "s/nightly/prod",
        "s/trial/alice@dev-alice",
    ]


@pytest.mark.e2e
@pytest.mark.slow
async def test_one_run_per_fire_time_across_replica_processes(
    kafka_settings, servers, schema, tmp_path
) -> None:
    domain = entity(EntityKind.DOMAIN, "s", {"domain": "s"})
    await send(kafka_settings, [*KITCHENS, domain, scheduled("minutely", "* * * * *")])
    logs = [tmp_path / f"scheduler-{i}.log" for i in range(2)]
    replicas = [
        await scheduler_process(kafka_settings, servers, schema, log, cron_poll_s="0.05")
        for log in logs
    ]
    try:
        async with asyncio.timeout(60):
            while not all(logged(log, "ready") for log in logs):
                await asyncio.sleep(0.1)
        async with database(servers, schema) as conn:
            # Two fire times with a run: both replicas ticked through the whole first minute.
            async with asyncio.timeout(150):
                while (
                    await conn.fetchval(
                        "SELECT count(order_run_id) FROM cron_fires WHERE schedule_id = $1",
                        "s/minutely/prod",
                    )
                    < 2
                ):
                    await asyncio.sleep(0.2)
            assert all(r.returncode is None for r in replicas), "a replica died"
            for replica in replicas:
                await stop(replica)
            fires = await conn.fetch(
                "SELECT fire_time FROM cron_fires WHERE order_run_id IS NOT NULL ORDER BY 1"
            )
            started = await conn.fetch("SELECT idempotency_key FROM runs ORDER BY 1")
    finally:
        for replica in replicas:
            await stop(replica)
        await drop(servers, schema)
    assert not any(logged(log, "background loop failed") for log in logs)
    assert fires[1]["fire_time"] - fires[0]["fire_time"] == timedelta(minutes=1)
    assert [r["idempotency_key"] for r in started] == [
        f"cron:s/minutely/prod@{f['fire_time'].isoformat()}" for f in fires
    ]
