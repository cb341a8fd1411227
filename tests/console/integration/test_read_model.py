"""The console's read model fed from the real topics: catch-up from history, then live."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pytest

from sous_common.settings import DatabaseSettings, KafkaSettings
from sous_console.app import build
from sous_console.service import CHANNEL
from sous_console.settings import ConsoleSettings
from sous_contracts.common import RunStatus, Severity, StepStatus, TestStatus
from sous_contracts.runs import OrderRunFinished, OrderRunStarted
from sous_contracts.steps import StepFinished, StepStarted
from sous_contracts.tests import TestResult
from tests.scheduler.standins import send

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def until(pool: asyncpg.Pool, query: str, *args, timeout: float = 20.0):
    """Poll a query until it returns a truthy value, or fail at the deadline."""
    async with asyncio.timeout(timeout):
        while not (found := await pool.fetchval(query, *args)):
            await asyncio.sleep(0.05)
    return found


def run_messages(run_id: uuid.UUID) -> tuple[OrderRunStarted, list, OrderRunFinished]:
    where = {"domain": "sales", "recipe": "daily", "variation": "dev", "kitchen": "dev"}
    started = OrderRunStarted(order_run_id=run_id, params={"day": "2026-12-01"}, **where)
    step_run = uuid.uuid4()
    ids = {"order_run_id": run_id, "step_run_id": step_run, "step": "load", "attempt": 1}
    middle = [
        StepStarted(**ids, worker_id="w1"),
        StepFinished(**ids, worker_id="w1", status=StepStatus.SUCCEEDED, log_tail="42 rows"),
        TestResult(
            order_run_id=run_id,
            step_run_id=step_run,
            suite_id=uuid.uuid4(),
            step="load",
            test="rows",
            kind="metric",
            severity=Severity.ERROR,
            status=TestStatus.FAILED,
            value=0,
            threshold=1,
            **{k: v for k, v in where.items()},
        ),
    ]
    finished = OrderRunFinished(
        order_run_id=run_id, status=RunStatus.FAILED, reason="test rows failed", **where
    )
    return started, middle, finished


async def test_catches_up_from_history_then_follows_live(
    kafka_settings: KafkaSettings, db_settings: DatabaseSettings, schema: str
) -> None:
    before, after = uuid.uuid4(), uuid.uuid4()
    old_start, old_middle, old_end = run_messages(before)
    await send(kafka_settings, [old_start, *old_middle, old_end])

    settings = ConsoleSettings(kafka=kafka_settings, database=db_settings, db_schema=schema)
    runtime = build(settings)
    listener = await asyncpg.connect(db_settings.url)
    heard: asyncio.Queue[dict] = asyncio.Queue()
    await listener.add_listener(CHANNEL, lambda *a: heard.put_nowait(json.loads(a[3])))
    try:
        async with runtime.running():
            pool = runtime.pool
            # History first: the run sent before the console started is there, whole
            # (its topics are read side by side, so wait for the last word of each).
            await until(
                pool,
                "SELECT true FROM runs WHERE order_run_id = $1 AND status = 'failed'"
                " AND tests_fail > 0",
                before,
            )
            row = await pool.fetchrow("SELECT * FROM runs WHERE order_run_id = $1", before)
            assert (row["domain"], row["recipe"], row["kitchen"]) == ("sales", "daily", "dev")
            assert (row["tests_pass"], row["tests_fail"]) == (0, 1)
            assert row["reason"] == "test rows failed"

            # Then live: each change is readable and announced on the channel.
            start, middle, end = run_messages(after)
            await send(kafka_settings, [start, middle[0]])
            await until(
                pool,
                "SELECT true FROM steps WHERE order_run_id = $1 AND status = 'running'",
                after,
            )
            await send(kafka_settings, [middle[1], middle[1], middle[2], middle[2], end])
            await until(
                pool,
                "SELECT true FROM runs WHERE order_run_id = $1 AND status = 'failed'"
                " AND tests_fail > 0",
                after,
            )
            steps = await pool.fetch("SELECT * FROM steps WHERE order_run_id = $1", after)
            assert [(s["step"], s["status"], s["log_tail"]) for s in steps] == [
                ("load", "succeeded", "42 rows")
            ]
            # A duplicate delivery counts nothing twice.
            assert (
                await pool.fetchval("SELECT tests_fail FROM runs WHERE order_run_id = $1", after)
                == 1
            )
            expected = {(k, s, str(after)) for k, s in [("run", "failed"), ("test", "failed")]}
            expected.add(("step", "succeeded", str(after)))
            kinds: set[tuple] = set()
            async with asyncio.timeout(10):
                while not expected <= kinds:
                    c = await heard.get()
                    kinds.add((c["kind"], c.get("status"), c.get("order_run_id")))
    finally:
        await listener.close()
        admin = await asyncpg.connect(db_settings.url)
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
