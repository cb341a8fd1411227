"""The example clients, run as programs against the real broker with a stand-in for Sous."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sous_common.settings import KafkaSettings
from sous_common.trust import Principal, verify
from sous_contracts.common import RunStatus, Severity, TestStatus, TestSummary
from sous_contracts.envelope import Envelope
from sous_contracts.runs import OrderRunFinished, OrderRunRejected, OrderRunStarted, StartOrderRun
from sous_contracts.tests import TestResult, TestSuiteFinished
from sous_contracts.topics import ORDER_RUN_COMMANDS, RUN_EVENTS, TEST_RESULTS
from tests.signing import ADMIN

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

CLIENTS = Path(__file__).resolve().parents[2] / "examples" / "clients"


async def start(settings: KafkaSettings, program: str, *args: str) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "SOUS_KAFKA_BOOTSTRAP": settings.bootstrap,
        "SOUS_KAFKA_TOPIC_PREFIX": settings.topic_prefix,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(CLIENTS / program),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(proc: asyncio.subprocess.Process, seconds: float = 30) -> tuple[int, str]:
    async with asyncio.timeout(seconds):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode() + err.decode()


async def publish(settings: KafkaSettings, topic: str, messages: list[Envelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    await producer.start()
    try:
        for m in messages:
            await producer.send_and_wait(topic, m.to_json(), key=m.kafka_key())
    finally:
        await producer.stop()


async def next_command(settings: KafkaSettings) -> tuple[StartOrderRun, bytes | None]:
    """The stand-in's ear: the first command on the order-run topic, and its key."""
    consumer = AIOKafkaConsumer(
        ORDER_RUN_COMMANDS.full_name(settings.topic_prefix),
        bootstrap_servers=settings.bootstrap,
        group_id=f"stand-in-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            record = await consumer.getone()
    finally:
        await consumer.stop()
    command = StartOrderRun.model_validate_json(record.value)
    # As the scheduler would: the signature verifies with the client's published key.
    accepted = await verify(command, record.value, record.headers, AdminOnly())
    assert accepted.principal == ADMIN.principal
    return command, record.key


class AdminOnly:
    """The published grants as the stand-in knows them: the session's admin and its key."""

    async def principal(self, name: str) -> Principal | None:
        return Principal(name, {"*": ["admin"]}, (ADMIN.public_key,)) if name == "admin" else None

    async def domain_known(self, domain: str) -> bool:
        return True

    async def run_domain(self, order_run_id: object) -> str | None:
        return None

    async def refresh(self, since: object) -> bool:
        return False


async def answer_run(settings: KafkaSettings, reply: str) -> StartOrderRun:
    """Stand-in for the scheduler: read the StartOrderRun, publish its outcome."""
    cmd, key = await next_command(settings)
    assert key == str(cmd.order_run_id).encode()
    common = {"order_run_id": cmd.order_run_id, "domain": cmd.domain, "recipe": cmd.recipe}
    run = {**common, "variation": cmd.variation or "default", "kitchen": cmd.kitchen or "dev"}
    other = {**run, "order_run_id": uuid.uuid4()}  # another run's event: must be ignored
    events: list[Envelope]
    if reply == "rejected":
        events = [OrderRunRejected(**common, reason="no such recipe")]
    else:
        events = [
            OrderRunFinished(**other, status=RunStatus.FAILED),
            OrderRunStarted(**run),
            OrderRunFinished(
                **run, status=RunStatus(reply), tests=TestSummary(passed=3, warnings=1)
            ),
        ]
    await publish(settings, RUN_EVENTS.full_name(settings.topic_prefix), events)
    return cmd


async def test_order_run_succeeds(kafka_settings: KafkaSettings) -> None:
    proc = await start(
        kafka_settings,
        "order_run.py",
        "sales/daily",
        "--variation",
        "dev",
        "--kitchen",
        "local",
        "--param",
        "day=2026-01-05",
        "--param",
        "limit=3",
        "--timeout",
        "30",
    )
    cmd = await answer_run(kafka_settings, "succeeded")
    code, out = await finish(proc)
    assert code == 0, out
    assert (cmd.domain, cmd.recipe, cmd.variation, cmd.kitchen) == (
        "sales",
        "daily",
        "dev",
        "local",
    )
    assert cmd.params == {"day": "2026-01-05", "limit": 3}
    assert cmd.message_id.version == 7
    assert f"order_run_id={cmd.order_run_id}" in out
    assert "OrderRunStarted" in out
    assert "succeeded: sales/daily variation=dev kitchen=local" in out
    assert "passed=3" in out


async def test_order_run_failed_exits_1(kafka_settings: KafkaSettings) -> None:
    proc = await start(kafka_settings, "order_run.py", "sales/daily", "--timeout", "30")
    await answer_run(kafka_settings, "failed")
    code, out = await finish(proc)
    assert code == 1, out
    assert "failed: sales/daily" in out


async def test_order_run_rejected_exits_4(kafka_settings: KafkaSettings) -> None:
    proc = await start(kafka_settings, "order_run.py", "sales/nope", "--timeout", "30")
    await answer_run(kafka_settings, "rejected")
    code, out = await finish(proc)
    assert code == 4, out
    assert "rejected: sales/nope: no such recipe" in out


async def test_order_run_times_out_exits_3(kafka_settings: KafkaSettings) -> None:
    proc = await start(kafka_settings, "order_run.py", "sales/daily", "--timeout", "1")
    code, out = await finish(proc)
    assert code == 3, out
    assert "timeout" in out


def result(
    run: uuid.UUID,
    suite: uuid.UUID,
    test: str,
    status: TestStatus,
    severity: Severity,
    **kw: object,
) -> TestResult:
    fields: dict[str, object] = {
        "order_run_id": run,
        "step_run_id": uuid.uuid4(),
        "suite_id": suite,
        "step": "load",
        "test": test,
        "kind": "row_count",
        "severity": severity,
        "status": status,
        "domain": "sales",
        "recipe": "daily",
        "kitchen": "dev",
        **kw,
    }
    return TestResult.model_validate(fields)


async def test_ops_console_prints_results_summaries_and_resumes(
    kafka_settings: KafkaSettings,
) -> None:
    topic = TEST_RESULTS.full_name(kafka_settings.topic_prefix)
    run, suite = uuid.uuid4(), uuid.uuid4()
    await publish(
        kafka_settings,
        topic,
        [
            result(
                run, suite, "rows", TestStatus.PASSED, Severity.ERROR, value=120, threshold=">0"
            ),
            result(run, suite, "nulls", TestStatus.WARNING, Severity.WARNING, message="3 null ids"),
            TestSuiteFinished(
                order_run_id=run,
                step_run_id=uuid.uuid4(),
                suite_id=suite,
                step="load",
                summary=TestSummary(passed=1, warnings=1),
                blocking=False,
            ),
        ],
    )
    group = f"console-{uuid.uuid4().hex[:8]}"
    proc = await start(
        kafka_settings, "ops_console.py", "--group", group, "--from-beginning", "--max", "3"
    )
    code, out = await finish(proc)
    assert code == 0, out
    lines = out.strip().splitlines()
    assert len(lines) == 3, out
    assert "PASSED" in lines[0]
    assert "sales/daily.load.rows kitchen=dev value=120 threshold='>0'" in lines[0]
    assert "WARNING" in lines[1]
    assert "3 null ids" in lines[1]
    assert "SUITE" in lines[2]
    assert "passed=1" in lines[2]
    assert "warnings=1" in lines[2]

    # Same group again, filtered: committed offsets mean only the new results are read.
    fresh = [
        result(run, uuid.uuid4(), "skew", TestStatus.WARNING, Severity.WARNING),
        result(run, uuid.uuid4(), "late", TestStatus.FAILED, Severity.ERROR, kitchen="prod"),
    ]
    await publish(kafka_settings, topic, fresh)
    proc = await start(
        kafka_settings, "ops_console.py", "--group", group, "--severity", "error", "--max", "1"
    )
    code, out = await finish(proc)
    assert code == 0, out
    [line] = out.strip().splitlines()
    assert "FAILED" in line
    assert "sales/daily.load.late kitchen=prod" in line


async def test_ops_console_stops_cleanly_on_ctrl_c(kafka_settings: KafkaSettings) -> None:
    topic = TEST_RESULTS.full_name(kafka_settings.topic_prefix)
    await publish(
        kafka_settings,
        topic,
        [result(uuid.uuid4(), uuid.uuid4(), "rows", TestStatus.PASSED, Severity.ERROR)],
    )
    proc = await start(
        kafka_settings, "ops_console.py", "--group", f"c-{uuid.uuid4().hex[:8]}", "--from-beginning"
    )
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        first = await proc.stdout.readline()  # it is up and printing
    assert b"PASSED" in first
    proc.send_signal(signal.SIGINT)
    code, out = await finish(proc, 15)
    assert code == 0, out
    assert "Traceback" not in out


async def test_order_run_refuses_an_invalid_name_before_sending(
    kafka_settings: KafkaSettings,
) -> None:
    proc = await start(kafka_settings, "order_run.py", "Sales/daily", "--timeout", "5")
    code, out = await finish(proc)
    assert code == 2, out
    assert "invalid StartOrderRun" in out
    consumer = AIOKafkaConsumer(
        ORDER_RUN_COMMANDS.full_name(kafka_settings.topic_prefix),
        bootstrap_servers=kafka_settings.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        assert await consumer.getmany(timeout_ms=1000) == {}
    finally:
        await consumer.stop()
