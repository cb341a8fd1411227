"""Scheduler processes killed with SIGKILL mid-run lose nothing; two replicas duplicate nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import asyncpg
import pytest

from sous_contracts.common import RunStatus
from sous_contracts.registry import EntityKind
from sous_contracts.runs import DomainRunCompleted, StartOrderRun
from sous_contracts.topics import DOMAIN_EVENTS
from tests.consumer_groups import owned_by
from tests.scheduler.integration.conftest import KITCHENS, recipe, taken_in
from tests.scheduler.integration.test_runs import finished, run_events
from tests.scheduler.processes import database, logged, scheduler_process, stop
from tests.scheduler.standins import entity, send, standins

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]

NOOP = {"run": {"kind": "noop"}}


@pytest.fixture
async def drop_schema(servers, schema):
    yield schema
    conn = await asyncpg.connect(servers.database_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


DOMAIN_A = entity(EntityKind.DOMAIN, "a", {"domain": "a"})
"""The upstream domain: completions of a domain the registry does not hold are refused."""


async def test_sigkill_mid_run_then_restart_finishes_every_run(
    kafka_settings, servers, drop_schema
) -> None:
    steps = {"one": NOOP, "two": {**NOOP, "needs": ["one"]}, "three": {**NOOP, "needs": ["two"]}}
    registry = [*KITCHENS, DOMAIN_A, recipe("a", "make", steps, concurrency={"limit": 50})]
    await send(kafka_settings, registry)
    proc = await scheduler_process(kafka_settings, servers, drop_schema)
    commands = [
        StartOrderRun(order_run_id=uuid.uuid4(), domain="a", recipe="make", variation="prod")
        for _ in range(10)
    ]
    try:
        async with standins(kafka_settings, delay_s=0.3) as seen:
            await send(kafka_settings, commands)
            async with asyncio.timeout(60):
                while sum(m.type == "ExecuteStep" for m in seen) < 12:
                    await asyncio.sleep(0.05)
            proc.kill()  # SIGKILL in the middle of the runs
            await proc.wait()
            proc = await scheduler_process(kafka_settings, servers, drop_schema)
            events = await run_events(kafka_settings, lambda s: len(finished(s)) >= 10, 90)
    finally:
        await stop(proc)
    done = finished(events)
    assert Counter(e.order_run_id for e in done) == Counter(c.order_run_id for c in commands)
    assert all(e.status is RunStatus.SUCCEEDED for e in done)


DOMAIN_D = entity(EntityKind.DOMAIN, "d", {"domain": "d"})
"""A second upstream domain: its events (keyed by domain) go to the other partition than a's."""


async def test_two_replicas_start_each_downstream_run_once(
    kafka_settings, servers, drop_schema, tmp_path
) -> None:
    registry = [
        *KITCHENS,
        DOMAIN_A,
        DOMAIN_D,
        recipe(
            "b",
            "follow",
            {"x": NOOP},
            concurrency={"limit": 100},
            triggers=[{"any": [{"domain": "a"}, {"domain": "d"}], "variation": "prod"}],
        ),
    ]
    await send(kafka_settings, registry)
    logs = [tmp_path / f"scheduler-{i}.log" for i in range(2)]
    procs = [await scheduler_process(kafka_settings, servers, drop_schema, log) for log in logs]
    upstream = [
        DomainRunCompleted(
            domain=domain,
            recipe="make",
            kitchen="prod",
            status=RunStatus.SUCCEEDED,
            external=True,
            correlation_id=uuid.uuid4(),
        )
        for domain in ("a", "d")
        for _ in range(10)
    ]
    # Behind the duplicates on both partitions; a failed completion starts nothing.
    sentinels = [
        DomainRunCompleted(
            domain=domain, recipe="make", kitchen="prod", status=RunStatus.FAILED, external=True
        )
        for domain in ("a", "d")
    ]
    prefix = kafka_settings.topic_prefix
    try:
        # Each replica owns one of the two partitions of the domain topic.
        await owned_by(
            kafka_settings, f"{prefix}sous-scheduler", DOMAIN_EVENTS.full_name(prefix), 2
        )
        async with standins(kafka_settings):
            await send(kafka_settings, upstream, copies=2)
            events = await run_events(kafka_settings, lambda s: len(finished(s)) >= 20, 90)
            await send(kafka_settings, sentinels)
            async with database(servers, drop_schema) as conn:
                await taken_in(conn, [m.message_id for m in sentinels])
                started = await conn.fetchval("SELECT count(*) FROM runs")
    finally:
        for p in procs:
            await stop(p)
    assert started == 20
    done = finished(events)
    assert len(done) == 20
    assert len({e.order_run_id for e in done}) == 20
    assert {e.correlation_id for e in done} == {u.correlation_id for u in upstream}
    assert all(logged(log, "trigger fired") > 0 for log in logs), "both replicas fired triggers"
