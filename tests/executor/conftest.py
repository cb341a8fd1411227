"""Executor fixtures: an in-process executor on real servers, and a harness on the topics."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sous_common.kafka import aiokafka_options
from sous_common.settings import DatabaseSettings, KafkaSettings
from sous_contracts import decode_message
from sous_contracts.envelope import Envelope
from sous_contracts.steps import ExecuteStep, StepFinished, StepStarted
from sous_contracts.topics import STEP_COMMANDS, STEP_EVENTS
from sous_executor.app import build
from sous_executor.service import Executor
from sous_executor.settings import ExecutorSettings
from tests.conftest import drop_schemas
from tests.tasks import cancel


def execute(kind: str, spec: dict[str, Any] | None = None, **fields: Any) -> ExecuteStep:
    """An ExecuteStep with fresh ids."""
    run = uuid.uuid4()
    values: dict[str, Any] = {
        "order_run_id": run,
        "step_run_id": uuid.uuid4(),
        "step": "load",
        "domain": "sales",
        "kitchen": "dev",
        "kind": kind,
        "spec": spec or {},
        "correlation_id": run,
        "producer": "test",
        "timeout_s": 30,
        **fields,
    }
    return ExecuteStep(**values)


@dataclass
class Harness:
    """Plays the scheduler: sends step commands, records every step event (and raw bytes)."""

    settings: KafkaSettings
    producer: AIOKafkaProducer
    events: list[Envelope] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    arrived: dict[uuid.UUID, float] = field(default_factory=dict)

    async def send(self, message: Envelope) -> None:
        await self.producer.send_and_wait(
            STEP_COMMANDS.full_name(self.settings.topic_prefix),
            message.to_json(),
            key=message.kafka_key(),
            headers=[("type", message.type.encode())],
        )

    def of(self, step_run_id: uuid.UUID, kind: type[Envelope] | None = None) -> list[Any]:
        return [
            e
            for e in self.events
            if getattr(e, "step_run_id", None) == step_run_id
            and (kind is None or isinstance(e, kind))
        ]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 20) -> Any:
        async with asyncio.timeout(timeout):
            while not (found := predicate()):
                await asyncio.sleep(0.02)
            return found

    async def finished(self, command: ExecuteStep, timeout: float = 20) -> StepFinished:
        found = await self.wait_for(lambda: self.of(command.step_run_id, StepFinished), timeout)
        return found[0]

    async def started(self, command: ExecuteStep, timeout: float = 20) -> StepStarted:
        found = await self.wait_for(lambda: self.of(command.step_run_id, StepStarted), timeout)
        return found[0]

    async def run(self, command: ExecuteStep, timeout: float = 20) -> StepFinished:
        await self.send(command)
        return await self.finished(command, timeout)


@pytest.fixture
async def harness(kafka_settings: KafkaSettings) -> AsyncIterator[Harness]:
    options = aiokafka_options(kafka_settings)
    producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
    consumer = AIOKafkaConsumer(
        STEP_EVENTS.full_name(kafka_settings.topic_prefix),
        **options,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await producer.start()
    await consumer.start()
    h = Harness(kafka_settings, producer)
    loop = asyncio.get_running_loop()

    async def collect() -> None:
        while True:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                for r in records:
                    h.raw.append(r.value)
                    message = decode_message(r.value, STEP_EVENTS.message_types())
                    h.arrived[message.message_id] = loop.time()
                    h.events.append(message)

    task = asyncio.create_task(collect())
    try:
        yield h
    finally:
        await cancel(task)
        await consumer.stop()
        await producer.stop()


@pytest.fixture
async def drop_schema(db_settings: DatabaseSettings, schema: str) -> AsyncIterator[str]:
    yield schema
    await drop_schemas(db_settings.url, schema)


@pytest.fixture
def executor_settings(drop_schema: str, tmp_path) -> ExecutorSettings:
    return ExecutorSettings(
        schema_name=drop_schema,
        worker_id="executor-test",
        work_root=tmp_path / "work",
        kill_grace_s=0.3,
        http_backoff_s=0.05,
    )


@pytest.fixture
def start_executor(
    kafka_settings: KafkaSettings,
    db_settings: DatabaseSettings,
    executor_settings: ExecutorSettings,
) -> Callable[..., contextlib.AbstractAsyncContextManager[Executor]]:
    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Executor]:
        settings = executor_settings.model_copy(update=overrides)
        runtime, executor = build(settings, kafka_settings, db_settings)
        async with runtime.running():
            yield executor

    return start


@pytest.fixture
async def executor(start_executor) -> AsyncIterator[Executor]:
    async with start_executor() as ex:
        yield ex
