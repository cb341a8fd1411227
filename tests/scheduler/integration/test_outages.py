"""Outages of Kafka and of PostgreSQL never turn a healthy step into a lost one (DESIGN §5.10).

The scheduler and the executor run as processes on a private instance; its Kafka, then its
PostgreSQL, is stopped for 30 s while a step runs. Leases are far shorter than the outages, so
only the watermark of the step events keeps them from expiring while nothing can be read.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from sous_common.settings import KafkaSettings
from sous_common.topic_admin import ensure_topics
from sous_contracts.common import RunStatus, StepStatus
from sous_contracts.registry import EntityKind
from sous_contracts.steps import CancelStep, StepFinished, StepStarted
from sous_contracts.topics import STEP_COMMANDS, STEP_EVENTS
from tests.conftest import TEST_PARTITIONS
from tests.executor.integration import executor_process
from tests.scheduler.integration.conftest import KITCHENS, recipe
from tests.scheduler.integration.test_runs import finished, read_topics, run_events, start
from tests.scheduler.processes import database, scheduler_process, stop
from tests.scheduler.standins import entity, send

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.faults, pytest.mark.slow]

OUTAGE_S = 30
"""How long each server is away: ten leases (heartbeat 1 s, lease factor 3)."""
STEPS = ("one", "two", "three")


def sleeping(seconds: int, needs: list[str]) -> dict:
    return {"run": {"kind": "shell", "argv": ["sleep", str(seconds)]}, "needs": needs}


async def step_phase(conn, run_id: uuid.UUID, step: str) -> str | None:
    state = await conn.fetchval("SELECT state FROM runs WHERE id = $1", run_id)
    return json.loads(state)["steps"][step]["phase"] if state else None


async def registry_holds(conn, count: int) -> None:
    """Wait until the scheduler process has migrated its schema and read the registry."""
    async with asyncio.timeout(60):
        while not (
            await conn.fetchval("SELECT to_regclass('registry') IS NOT NULL")
            and await conn.fetchval("SELECT count(*) FROM registry") >= count
        ):
            await asyncio.sleep(0.1)


async def running(conn, run_id: uuid.UUID, step: str) -> None:
    """Wait until the scheduler has taken in the step's start (the barrier of an outage)."""
    async with asyncio.timeout(90):
        while (phase := await step_phase(conn, run_id, step)) != "running":
            ended = await conn.fetchval("SELECT state FROM runs WHERE id = $1", run_id)
            lost = [n for n, s in json.loads(ended or "{}").get("steps", {}).items()
                    if s["phase"] in ("lost", "failed", "cancelled")]  # fmt: skip
            assert not lost, f"steps {lost} given up on while {step!r} was {phase}"
            await asyncio.sleep(0.1)


async def test_steps_outlive_a_kafka_and_a_postgres_outage(private_infra, tmp_path) -> None:
    servers = await asyncio.to_thread(private_infra.up)
    kafka = KafkaSettings(
        bootstrap=servers.kafka_bootstrap, topic_prefix=f"o{uuid.uuid4().hex[:8]}."
    )
    await ensure_topics(kafka, partitions=TEST_PARTITIONS)
    schema = f"o_{uuid.uuid4().hex[:12]}"
    steps = {
        "one": sleeping(6, []),
        "two": sleeping(6, ["one"]),
        "three": sleeping(2, ["two"]),
    }
    await send(
        kafka,
        [*KITCHENS, entity(EntityKind.DOMAIN, "a", {"domain": "a"}), recipe("a", "slow", steps)],
    )
    fast_leases = {"heartbeat_interval_s": "1", "lease_factor": "3", "mark_interval_s": "0.5"}
    scheduler = await scheduler_process(
        kafka, servers, schema, tmp_path / "scheduler.log", **fast_leases
    )
    executor = executor_process.start(
        kafka,
        servers.database_url,
        f"x{schema}",
        tmp_path / "executor.log",
        work_root=str(tmp_path / "work"),
    )
    command = start("a", "slow")
    try:
        async with database(servers, schema) as conn:
            await registry_holds(conn, len(KITCHENS) + 2)
        await send(kafka, [command])

        async with database(servers, schema) as conn:
            await running(conn, command.order_run_id, "one")
        await private_infra.stop("kafka")
        await asyncio.sleep(OUTAGE_S)  # the outage itself, not a wait for something to happen
        await private_infra.start("kafka")

        async with database(servers, schema) as conn:
            await running(conn, command.order_run_id, "two")
        await private_infra.stop("postgres")
        await asyncio.sleep(OUTAGE_S)
        await private_infra.start("postgres")

        events = await run_events(kafka, lambda s: len(finished(s)) >= 1, 90)
    finally:
        await stop(scheduler)
        if executor.poll() is None:
            executor.terminate()
            await asyncio.to_thread(executor.wait, 20)
    (end,) = finished(events)
    history = await read_topics(
        kafka, [STEP_COMMANDS, STEP_EVENTS], lambda s: len(_of(s, StepFinished)) >= 3, 30
    )
    assert end.status is RunStatus.SUCCEEDED, end.reason
    started_attempts = {(m.step, m.attempt) for m in _of(history, StepStarted)}
    assert sorted(s for s, _ in started_attempts) == sorted(STEPS), "each step started once"
    outcomes = {(m.step, m.attempt, m.status) for m in _of(history, StepFinished)}
    assert outcomes == {(s, a, StepStatus.SUCCEEDED) for s, a in started_attempts}
    # An attempt is given up on only when no executor took it before its deadline (an
    # outage can delay a dispatch); one that started is never cancelled or run again.
    started_ids = {(m.step_run_id, m.attempt) for m in _of(history, StepStarted)}
    cancelled = {(m.step_run_id, m.attempt) for m in _of(history, CancelStep)}
    assert not cancelled & started_ids, "a started attempt was given up on"


def _of(messages: list, kind: type) -> list:
    return [m for m in messages if isinstance(m, kind)]
