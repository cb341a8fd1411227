"""Monitors on real Kafka and PostgreSQL: a freshness monitor on a stale table fails on its
cron, holds a `require: monitors_pass` trigger, and after a fresh load passes and releases it.

The scheduler runs on a clock the test moves; the real test-runner runs the checks.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from sous_common.kafka import aiokafka_options
from sous_contracts import decode_message
from sous_contracts.common import RunStatus
from sous_contracts.registry import EntityKind
from sous_contracts.runs import DomainRunCompleted, TriggerHeld
from sous_contracts.tests import TestResult
from sous_contracts.topics import RUN_EVENTS
from sous_scheduler.schedules import Schedules
from sous_scheduler.triggers import Triggers
from sous_test_runner.app import build as build_runner
from sous_test_runner.settings import TestRunnerSettings
from tests.conftest import drop_schemas
from tests.scheduler.integration.conftest import handled, publish_registry, run_scheduler
from tests.scheduler.integration.test_schedules import Clock
from tests.scheduler.standins import entity, send
from tests.test_runner.integration.harness import Console

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
async def warehouse(db_settings, monkeypatch) -> AsyncIterator[str]:
    """A schema holding `revenue`, last loaded two days ago (stale)."""
    name = f"wh_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(db_settings.url)
    try:
        await conn.execute(f"CREATE SCHEMA {name}")
        await conn.execute(f"CREATE TABLE {name}.revenue (loaded_at timestamptz NOT NULL)")
        await conn.execute(
            f"INSERT INTO {name}.revenue VALUES ($1)", datetime.now(UTC) - timedelta(days=2)
        )
    finally:
        await conn.close()
    monkeypatch.setenv("SOUS_SECRET_FINANCE__WAREHOUSE", db_settings.url)
    yield name
    await drop_schemas(db_settings.url, name)


@pytest.fixture
async def mesh(kafka_settings, servers, db_settings, schema, tmp_path, warehouse):
    """Scheduler on a moved clock, the real test-runner, and an ops console on results."""
    clock = Clock(datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC))
    runner = build_runner(
        TestRunnerSettings(
            kafka=kafka_settings,
            database=db_settings,
            db_schema=f"{schema}_tr",
            secrets_dir=tmp_path,
        )
    )
    console = Console(kafka_settings)
    async with (
        run_scheduler(kafka_settings, servers, schema, clock, cron_poll_s=3600) as service,
        runner.runtime.running(),
    ):
        await console.producer.start()
        await console.consumer.start()
        try:
            yield clock, service, console
        finally:
            await console.consumer.stop()
            await console.producer.stop()
            await drop_schemas(db_settings.url, f"{schema}_tr")


def entities(table: str) -> list:
    fresh = {
        "name": "fresh",
        "check": {
            "kind": "freshness",
            "table": "${params.wh}.revenue",
            "column": "loaded_at",
            "max_age": "1h",
        },
        "severity": "error",
    }
    finance = {
        "domain": "finance",
        "connections": {"warehouse": {"kind": "postgres", "ref": "secret:warehouse"}},
        # The kitchen's params resolve the monitor's dataset and tests.
        "kitchens": {"prod": {"params": {"wh": table.split(".")[0]}}},
        "monitors": {
            "revenue-fresh": {
                "dataset": "${params.wh}.revenue",
                "kitchen": "prod",
                "connection": "warehouse",
                "schedule": "* * * * *",
                "tests": [fresh],
            }
        },
    }
    revenue = {
        "recipe": "revenue",
        "params": {"wh": {"type": "string", "default": "none"}},
        "steps": {"load": {"run": {"kind": "noop"}, "outputs": ["${params.wh}.revenue"]}},
        "variations": {"prod": {"kitchen": "prod"}},
    }
    campaign = {
        "recipe": "campaign",
        "steps": {"send": {"run": {"kind": "noop"}}},
        "variations": {"prod": {"kitchen": "prod"}},
        "triggers": [
            {
                "name": "after-revenue",
                "on": {"domain": "finance", "recipe": "revenue"},
                "variation": "prod",
                "require": "monitors_pass",
            }
        ],
    }
    return [
        entity(EntityKind.DOMAIN, "finance", finance),
        entity(EntityKind.RECIPE, "revenue", revenue, "finance"),
        entity(EntityKind.RECIPE, "campaign", campaign, "marketing"),
    ]


async def monitor_results(console: Console, count: int) -> list[TestResult]:
    """Wait until the console has read `count` results of monitor checks."""
    async with asyncio.timeout(30):
        while True:
            found = [r for rs in console.results.values() for r in rs if r.monitor is not None]
            if len(found) >= count:
                return found
            await console.poll()


async def held_event(kafka_settings) -> TriggerHeld:
    """Read the run-event topic from its start until a TriggerHeld shows up."""
    consumer = AIOKafkaConsumer(
        RUN_EVENTS.full_name(kafka_settings.topic_prefix),
        **aiokafka_options(kafka_settings),
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            while True:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for r in records:
                        message = decode_message(r.value, RUN_EVENTS.message_types())
                        if isinstance(message, TriggerHeld):
                            return message
    finally:
        await consumer.stop()


async def health(service) -> asyncpg.Record:
    async with asyncio.timeout(30):
        while True:
            row = await service.rt.pool.fetchrow(
                "SELECT passed, failed_tests, check_id FROM monitor_health"
                " WHERE monitor_id = 'finance/revenue-fresh'"
            )
            if row is not None:
                return row
            await asyncio.sleep(0.05)


async def firing(service) -> asyncpg.Record:
    return await service.rt.pool.fetchrow(
        "SELECT outcome, order_run_id FROM trigger_firings"
        " WHERE trigger_id = 'marketing/campaign#after-revenue'"
    )


async def test_stale_monitor_holds_trigger_until_a_fresh_load_passes(
    kafka_settings, db_settings, mesh, warehouse
) -> None:
    clock, service, console = mesh
    table = f"{warehouse}.revenue"
    await publish_registry(kafka_settings, service, entities(table))
    schedules = Schedules(service, Triggers(service))
    await schedules.tick()  # first sight: the baseline fire, no check
    clock.now += timedelta(seconds=40)  # 10:01:10, the 10:01 check is due
    await schedules.tick()

    [failed] = await monitor_results(console, 1)
    assert (failed.monitor, failed.dataset, failed.test) == ("revenue-fresh", table, "fresh")
    assert failed.status.value == "failed"
    assert failed.severity.value == "error"
    assert failed.domain == "finance"
    first = await health(service)
    assert not first["passed"]
    assert first["failed_tests"] == ["fresh"]

    upstream = DomainRunCompleted(
        domain="finance",
        recipe="revenue",
        variation="prod",
        kitchen="prod",
        status=RunStatus.SUCCEEDED,
        order_run_id=uuid.uuid4(),
        params={"wh": warehouse},  # the run's params resolve the datasets it wrote
    )
    await handled(service, [upstream])  # barrier: the scheduler took the event in
    held = await firing(service)
    assert held["order_run_id"] is None
    assert held["outcome"] == (f"held: monitor finance/revenue-fresh on {table} failed (fresh)")
    assert await campaigns(service) == 0
    event = await held_event(kafka_settings)
    assert (event.trigger_id, event.domain, event.recipe, event.kitchen) == (
        "marketing/campaign#after-revenue",
        "marketing",
        "campaign",
        "prod",
    )
    assert event.upstream_order_run_id == upstream.order_run_id
    assert event.datasets == [table]
    assert event.reason == f"monitor finance/revenue-fresh on {table} failed (fresh)"

    conn = await asyncpg.connect(db_settings.url)
    try:
        await conn.execute(f"INSERT INTO {table} VALUES (now())")  # the fresh load
    finally:
        await conn.close()
    clock.now += timedelta(seconds=60)  # 10:02:10
    await schedules.tick()
    passed = await monitor_results(console, 2)
    assert passed[-1].status.value == "passed"

    async with asyncio.timeout(30):
        while (row := await firing(service))["outcome"] != "started":
            await asyncio.sleep(0.05)
    assert row["order_run_id"] == event.order_run_id  # the run the hold named
    assert await campaigns(service) == 1
    again = await service.rt.pool.fetchval("SELECT count(*) FROM held_firings")
    assert again == 0


async def campaigns(service) -> int:
    return await service.rt.pool.fetchval("SELECT count(*) FROM runs WHERE recipe = 'campaign'")


def after_load(table: str) -> list:
    """Finance with a monitor that checks its table after each run of revenue."""
    [finance, revenue, _] = entities(table)
    spec = dict(finance.spec)
    monitor = dict(spec["monitors"]["revenue-fresh"])
    del monitor["schedule"]
    monitor["on"] = {"domain": "finance", "recipe": "revenue"}
    spec["monitors"] = {"after-load": monitor}
    return [entity(EntityKind.DOMAIN, "finance", spec), revenue]


def completed() -> DomainRunCompleted:
    return DomainRunCompleted(
        domain="finance",
        recipe="revenue",
        variation="prod",
        kitchen="prod",
        status=RunStatus.SUCCEEDED,
        order_run_id=uuid.uuid4(),
        correlation_id=uuid.uuid4(),
    )


async def test_a_monitor_runs_once_per_upstream_completion(kafka_settings, mesh, warehouse):
    _, service, console = mesh
    table = f"{warehouse}.revenue"
    await publish_registry(kafka_settings, service, after_load(table))
    first, sentinel = completed(), completed()
    await send(kafka_settings, [first], copies=2)  # delivered twice
    await handled(service, [sentinel])  # behind both on the partition of the domain
    results = await monitor_results(console, 2)
    await console.poll()  # anything else already on the topic
    results = [r for rs in console.results.values() for r in rs if r.monitor is not None]
    assert sorted(r.correlation_id for r in results) == sorted(
        [first.correlation_id, sentinel.correlation_id]
    )
    assert {(r.monitor, r.dataset, r.status.value) for r in results} == {
        ("after-load", table, "failed")
    }
