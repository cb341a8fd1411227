"""Scheduler processes killed with SIGKILL mid-run lose nothing; two replicas duplicate nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from sous_contracts.common import RunStatus
from sous_contracts.registry import EntityKind
from sous_contracts.runs import DomainRunCompleted, StartOrderRun
from sous_contracts.topics import DOMAIN_EVENTS
from tests.consumer_groups import owned_by
from tests.scheduler.integration.conftest import KITCHENS, recipe, taken_in
from tests.scheduler.integration.test_runs import finished, run_events
from tests.scheduler.standins import entity, send, standins

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]

NOOP = {"run": {"kind": "noop"}}


async def scheduler_process(
    kafka_settings, servers, schema, log: Path | None = None, **settings: str
) -> asyncio.subprocess.Process:
    """Start one scheduler replica; its log (JSON lines) goes to `log` when given."""
    env = {
        **os.environ,
        "SOUS_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "SOUS_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "SOUS_DATABASE_URL": servers.database_url,
        "SOUS_SCHEDULER_SCHEMA_NAME": schema,
        "SOUS_SCHEDULER_TIMER_POLL_S": "0.1",
        "SOUS_SCHEDULER_DISPATCH_LEASE_S": "30",
        **{f"SOUS_SCHEDULER_{k.upper()}": v for k, v in settings.items()},
    }
    with contextlib.ExitStack() as files:
        out = files.enter_context(log.open("ab")) if log else asyncio.subprocess.DEVNULL
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "faststream",
            "run",
            "--factory",
            "sous_scheduler.app:create_app",
            env=env,
            stdout=out,
            stderr=out,
        )


def logged(log: Path, event: str) -> int:
    """How many times a replica logged this event."""
    lines = log.read_text().splitlines() if log.exists() else []
    return sum(json.loads(line).get("event") == event for line in lines if line.startswith("{"))


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


@contextlib.asynccontextmanager
async def database(servers, schema: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection that sees a scheduler process's schema."""
    conn = await asyncpg.connect(servers.database_url, server_settings={"search_path": schema})
    try:
        yield conn
    finally:
        await conn.close()
