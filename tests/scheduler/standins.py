"""Stand-ins that answer on the topics as an executor and a test-runner would, for tests of
the scheduler alone. They send every answer twice, so every test also checks dedup."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sous_common.kafka import aiokafka_options
from sous_common.settings import KafkaSettings
from sous_contracts import decode_message
from sous_contracts.common import Outputs, StepStatus, TestStatus, TestSummary
from sous_contracts.envelope import Envelope
from sous_contracts.registry import EntityKind, RegistryEntityChanged
from sous_contracts.steps import ExecuteStep, StepFinished, StepStarted
from sous_contracts.tests import RunTests, TestSuiteFinished
from sous_contracts.topics import STEP_COMMANDS, TEST_COMMANDS, topic_for
from tests.signing import signed_headers
from tests.tasks import cancel

Answer = Callable[[ExecuteStep], StepStatus]


async def send(settings: KafkaSettings, messages: list[Envelope], copies: int = 1) -> None:
    producer = AIOKafkaProducer(**aiokafka_options(settings), acks="all")
    await producer.start()
    try:
        for m in messages:
            for _ in range(copies):
                value = m.to_json()
                await producer.send_and_wait(
                    topic_for(m).full_name(settings.topic_prefix),
                    value,
                    key=m.kafka_key(),
                    headers=signed_headers(value),
                )
    finally:
        await producer.stop()


def entity(kind: EntityKind, name: str, spec: dict[str, Any], domain: str | None = None):
    key = f"{kind.value}:{domain + '/' if domain else ''}{name}"
    return RegistryEntityChanged(
        entity_id=key,
        kind=kind,
        domain=domain,
        name=name,
        version=f"sha256:{abs(hash(json.dumps(spec, sort_keys=True)))}",
        spec=spec,
    )


@contextlib.asynccontextmanager
async def standins(
    settings: KafkaSettings,
    answer: Answer | None = None,
    blocking_tests: set[str] = frozenset(),
    delay_s: float = 0.0,
) -> AsyncIterator[list[Envelope]]:
    """Run a fake executor and test-runner; yield the list of commands they saw."""
    seen: list[Envelope] = []
    consumer = AIOKafkaConsumer(
        STEP_COMMANDS.full_name(settings.topic_prefix),
        TEST_COMMANDS.full_name(settings.topic_prefix),
        **aiokafka_options(settings),
        group_id="standins",
        auto_offset_reset="earliest",
    )
    await consumer.start()

    async def loop() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for r in records:
                    m = decode_message(r.value)
                    seen.append(m)
                    if delay_s:
                        asyncio.get_running_loop().call_later(
                            delay_s,
                            lambda m=m: tasks.add(
                                asyncio.create_task(
                                    send(settings, _answers(m, answer, blocking_tests), copies=2)
                                )
                            ),
                        )
                    else:
                        await send(settings, _answers(m, answer, blocking_tests), copies=2)

    tasks: set[asyncio.Task[None]] = set()
    task = asyncio.create_task(loop())
    try:
        yield seen
    finally:
        await cancel(task)
        await consumer.stop()


def _answers(m: Envelope, answer: Answer | None, blocking: set[str]) -> list[Envelope]:
    if isinstance(m, ExecuteStep):
        status = answer(m) if answer else StepStatus.SUCCEEDED
        ids = {
            "order_run_id": m.order_run_id,
            "step_run_id": m.step_run_id,
            "attempt": m.attempt,
            "worker_id": "standin",
            "causation_id": m.message_id,
            "correlation_id": m.correlation_id,
        }
        return [
            StepStarted(step=m.step, **ids),
            StepFinished(
                step=m.step,
                status=status,
                **ids,
                outputs=Outputs(values={"rows": 10, "step": m.step}),
            ),
        ]
    if isinstance(m, RunTests):
        failed = [t.name for t in m.tests if t.name in blocking]
        return [
            TestSuiteFinished(
                order_run_id=m.order_run_id,
                step_run_id=m.step_run_id,
                suite_id=m.suite_id,
                step=m.step,
                summary=TestSummary(passed=len(m.tests) - len(failed), failed=len(failed)),
                blocking=bool(failed),
                failed_tests=failed,
                results={
                    t.name: TestStatus.FAILED if t.name in failed else TestStatus.PASSED
                    for t in m.tests
                },
                causation_id=m.message_id,
            )
        ]
    return []
