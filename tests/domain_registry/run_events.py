"""Run events as the scheduler, executor and test-runner publish them, fed to a registry."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from aiokafka import AIOKafkaProducer

from sous_common.kafka import aiokafka_options
from sous_contracts.common import RunStatus, Severity, StepStatus, TestStatus, TestSummary
from sous_contracts.runs import OrderRunFinished, OrderRunStarted
from sous_contracts.steps import StepFinished, StepStarted
from sous_contracts.tests import TestResult
from sous_contracts.topics import topic_for
from tests.signing import signed_headers


async def produce(settings, messages, signer=None) -> None:
    """Send messages as a plain client would; signed by `signer` when given."""
    producer = AIOKafkaProducer(**aiokafka_options(settings), acks="all")
    await producer.start()
    try:
        for m in messages:
            topic = topic_for(m).full_name(settings.topic_prefix)
            value = m.to_json()
            headers = signed_headers(value, signer) if signer is not None else None
            await producer.send_and_wait(topic, value, key=m.kafka_key(), headers=headers)
    finally:
        await producer.stop()


def run_events(
    run_id: uuid.UUID, kitchen: str, *, error_failed: int, spec_version: str | None = None
) -> list:
    """A sales/daily run of one step and one error test, failed when the test failed."""
    where = {"order_run_id": run_id, "domain": "sales", "recipe": "daily", "kitchen": kitchen}
    step = {"order_run_id": run_id, "step_run_id": uuid.uuid4(), "step": "model", "attempt": 1}
    status = RunStatus.FAILED if error_failed else RunStatus.SUCCEEDED
    return [
        OrderRunStarted(
            **where, variation="dev", params={"day": "2026-11-24"}, spec_version=spec_version
        ),
        StepStarted(**step, worker_id="w1"),
        StepFinished(**step, worker_id="w1", status=StepStatus.SUCCEEDED),
        TestResult(
            **{k: v for k, v in step.items() if k != "attempt"},
            suite_id=uuid.uuid4(),
            test="enough_rows",
            kind="sql",
            severity=Severity.ERROR,
            status=TestStatus.FAILED if error_failed else TestStatus.PASSED,
            domain="sales",
            recipe="daily",
            kitchen=kitchen,
            value=8,
            message="8 >= 1000000 is false" if error_failed else "ok",
        ),
        OrderRunFinished(
            **where, variation="dev", status=status, tests=TestSummary(failed=error_failed)
        ),
    ]


def complete(run: dict, status: str) -> bool:
    """Whether the run, its step and its test result all arrived."""
    return (
        run["status"] == status
        and [s["status"] for s in run["steps"]] == ["succeeded"]
        and len(run["test_results"]) == 1
    )


async def wait_for_run(client: httpx.AsyncClient, run_id, status: str) -> dict:
    """Poll until the run, its step and its test result all arrived (three topics)."""
    async with asyncio.timeout(20):
        while True:
            r = await client.get(f"/v1/runs/{run_id}")
            if r.status_code == 200 and complete(r.json(), status):
                return dict(r.json())
            await asyncio.sleep(0.05)
