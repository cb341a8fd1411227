"""A monitor's check in the console: its results are listed, no run is made of them, and a
held trigger is no run either until it starts."""

from __future__ import annotations

import uuid

import pytest

from sous_common.settings import DatabaseSettings, KafkaSettings
from sous_console.app import build
from sous_console.settings import ConsoleSettings
from sous_contracts.common import Severity, TestStatus
from sous_contracts.runs import TriggerHeld
from sous_contracts.tests import TestResult
from tests.console.integration.test_read_model import run_messages, until
from tests.scheduler.standins import send

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_monitor_results_are_listed_but_make_no_run(
    kafka_settings: KafkaSettings, db_settings: DatabaseSettings, schema: str
) -> None:
    check_id = uuid.uuid4()
    result = TestResult(
        order_run_id=check_id,
        step_run_id=check_id,
        suite_id=check_id,
        step="revenue",
        test="fresh",
        kind="freshness",
        severity=Severity.ERROR,
        status=TestStatus.FAILED,
        domain="finance",
        recipe="monitors",
        kitchen="prod",
        monitor="revenue",
        dataset="finance.revenue",
    )
    held = TriggerHeld(
        order_run_id=uuid.uuid4(),
        trigger_id="marketing/dashboard#0",
        domain="marketing",
        recipe="dashboard",
        kitchen="prod",
        reason="monitor finance/revenue on finance.revenue failed (fresh)",
    )
    sentinel, _, _ = run_messages(held.order_run_id)  # the run the hold starts, once released
    await send(kafka_settings, [result, held, sentinel])
    runtime = build(ConsoleSettings(kafka=kafka_settings, database=db_settings, db_schema=schema))
    async with runtime.running():
        pool = runtime.pool
        await until(pool, "SELECT true FROM test_results WHERE order_run_id = $1", check_id)
        # The run's start shares the partition of the hold: it was read behind it.
        await until(pool, "SELECT true FROM runs WHERE order_run_id = $1", held.order_run_id)
        rows = await pool.fetch("SELECT order_run_id, status FROM runs")
        assert [(r["order_run_id"], r["status"]) for r in rows] == [(held.order_run_id, "running")]
