"""Helpers of the test-runner's integration tests: RunTests builders and an ops-console reader."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sous_common.kafka import aiokafka_options
from sous_contracts import decode_message
from sous_contracts.common import Outputs
from sous_contracts.tests import RunTests, TestDefinition, TestResult, TestSuiteFinished
from sous_contracts.topics import TEST_COMMANDS, TEST_RESULTS

WAREHOUSE_ENV = "SOUS_SECRET_SALES__WAREHOUSE"
"""The variable of `secret:warehouse` in the store of domain `sales`."""


class Console:
    """Sends RunTests and reads results like an ops console: a plain consumer, its own group."""

    def __init__(self, kafka_settings) -> None:
        self.settings = kafka_settings
        self.options = aiokafka_options(kafka_settings)
        self.results: dict[uuid.UUID, list[TestResult]] = defaultdict(list)
        self.finished: dict[uuid.UUID, list[TestSuiteFinished]] = defaultdict(list)
        self.raw: list[bytes] = []
        self.producer = AIOKafkaProducer(**self.options, acks="all", enable_idempotence=True)
        self.consumer = AIOKafkaConsumer(
            TEST_RESULTS.full_name(kafka_settings.topic_prefix),
            **self.options,
            group_id=f"ops-console-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
        )

    async def send(self, command: RunTests) -> None:
        await self.producer.send_and_wait(
            TEST_COMMANDS.full_name(self.settings.topic_prefix),
            command.to_json(),
            key=command.kafka_key(),
        )

    async def poll(self) -> None:
        batches = await self.consumer.getmany(timeout_ms=200)
        for records in batches.values():
            for r in records:
                self.raw.append(r.value)
                message = decode_message(r.value, TEST_RESULTS.message_types())
                if isinstance(message, TestResult):
                    self.results[message.suite_id].append(message)
                elif isinstance(message, TestSuiteFinished):
                    self.finished[message.suite_id].append(message)

    async def suite(self, suite_id: uuid.UUID, timeout: float = 30) -> TestSuiteFinished:
        async with asyncio.timeout(timeout):
            while not self.finished.get(suite_id):
                await self.poll()
        return self.finished[suite_id][0]

    async def run(self, command: RunTests) -> tuple[TestSuiteFinished, dict[str, TestResult]]:
        await self.send(command)
        finished = await self.suite(command.suite_id)
        return finished, {r.test: r for r in self.results[command.suite_id]}


def run_tests(*tests: TestDefinition, connections=None, rows=1200, **extra) -> RunTests:
    """A RunTests for step `load` of `sales/daily` in kitchen `dev`."""
    fields = {
        "order_run_id": uuid.uuid4(),
        "step_run_id": uuid.uuid4(),
        "step": "load",
        "suite_id": uuid.uuid4(),
        "domain": "sales",
        "recipe": "daily",
        "kitchen": "dev",
        "variation": "dev",
        "outputs": Outputs(values={"rows": rows}),
        "params": {"expected": 1000},
        "connections": {"warehouse": "secret:warehouse"} if connections is None else connections,
        "producer": "test",
        **extra,
    }
    return RunTests(tests=list(tests), **fields)


def check_def(name: str, check: dict, severity: str = "error", timeout_s: float = 10):
    return TestDefinition(
        name=name, kind=check["kind"], check=check, severity=severity, timeout_s=timeout_s
    )
