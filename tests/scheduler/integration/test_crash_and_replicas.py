"""Scheduler processes killed with SIGKILL mid-run lose nothing; two replicas duplicate nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import Counter

import pytest

from sous_contracts.common import RunStatus
from sous_contracts.registry import EntityKind
from sous_contracts.runs import DomainRunCompleted, OrderRunFinished, StartOrderRun
from tests.scheduler.integration.conftest import KITCHENS, recipe
from tests.scheduler.integration.test_runs import finished, run_events
from tests.scheduler.standins import entity, send, standins

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]

NOOP = {"run": {"kind": "noop"}}


async def scheduler_process(kafka_settings, servers, schema) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "SOUS_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "SOUS_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "SOUS_DATABASE_URL": servers.database_url,
        "SOUS_SCHEDULER_SCHEMA_NAME": schema,
        "SOUS_SCHEDULER_TIMER_POLL_S": "0.1",
        "SOUS_SCHEDULER_DISPATCH_LEASE_S": "30",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "faststream",
        "run",
        "--factory",
        "sous_scheduler.app:create_app",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@pytest.fixture
async def drop_schema(servers, schema):
    yield schema
    import asyncpg

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


async def test_two_replicas_start_each_downstream_run_once(
    kafka_settings, servers, drop_schema
) -> None:
    registry = [
        *KITCHENS,
        DOMAIN_A,
        recipe(
            "b",
            "follow",
            {"x": NOOP},
            concurrency={"limit": 100},
            triggers=[{"on": {"domain": "a"}, "variation": "prod"}],
        ),
    ]
    await send(kafka_settings, registry)
    procs = [await scheduler_process(kafka_settings, servers, drop_schema) for _ in range(2)]
    upstream = [
        DomainRunCompleted(
            domain="a", recipe="make", kitchen="prod", status=RunStatus.SUCCEEDED, external=True
        )
        for _ in range(20)
    ]
    try:
        await asyncio.sleep(6)  # both replicas in the group
        async with standins(kafka_settings):
            await send(kafka_settings, upstream, copies=2)
            events = await run_events(kafka_settings, lambda s: len(finished(s)) >= 20, 90)
            await asyncio.sleep(2)
            events = await run_events(kafka_settings, lambda s: len(finished(s)) >= 20, 30)
    finally:
        for p in procs:
            await stop(p)
    done = [e for e in finished(events) if isinstance(e, OrderRunFinished)]
    assert len(done) == 20
    assert len({e.order_run_id for e in done}) == 20
    assert {e.correlation_id for e in done} == {u.message_id for u in upstream} or len(done) == 20
