"""Test-runner throughput and suite latency (issue 6): suites of 5 `metric` + 5 `sql` tests.

The service runs in this process on the real broker and database (its own topic prefix and
schema); RunTests go in through Kafka and a plain consumer reads TestSuiteFinished back.
Suite latency = RunTests produced → its TestSuiteFinished consumed.

- `test_runner_throughput`: closed loop, a fixed number of suites kept in flight; each
  finished suite lets the next one go. Reports tests per second.
- `test_runner_open_loop`: suites arrive at a fixed rate whatever comes back; reports the
  latency percentiles at that rate.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import asyncpg
from _common import database_settings, emit, fresh_schema, kafka_settings, percentiles
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sous_common.kafka import aiokafka_options
from sous_common.logs import configure
from sous_common.topic_admin import ensure_topics
from sous_contracts import decode_message
from sous_contracts.common import Outputs
from sous_contracts.tests import RunTests, TestDefinition, TestSuiteFinished
from sous_contracts.topics import TEST_COMMANDS, TEST_RESULTS
from sous_test_runner.app import build
from sous_test_runner.settings import TestRunnerSettings

WAREHOUSE_ENV = "SOUS_SECRET_BENCH__WAREHOUSE"
"""`secret:warehouse` in the store of domain `bench`."""
IN_FLIGHT = 8
CONSUMERS = int(os.environ.get("SOUS_TEST_RUNNER_CONSUMERS", "3"))
CLOSED_SUITES = 400
OPEN_RATE_PER_S = 20
OPEN_SECONDS = 10
WARMUP = 20


def suite(table: str) -> list[TestDefinition]:
    metric = [
        TestDefinition(
            name=f"m{i}",
            kind="metric",
            check={"kind": "metric", "output": "rows", "op": ">", "value": i},
        )
        for i in range(5)
    ]
    sql = [
        TestDefinition(
            name=f"s{i}",
            kind="sql",
            check={
                "kind": "sql",
                "query": f"SELECT count(*) FROM {table} WHERE bucket = {i}",
                "op": ">",
                "value": 0,
            },
        )
        for i in range(5)
    ]
    return metric + sql


def command(tests: list[TestDefinition]) -> RunTests:
    return RunTests(
        order_run_id=uuid.uuid4(),
        step_run_id=uuid.uuid4(),
        step="load",
        suite_id=uuid.uuid4(),
        domain="bench",
        recipe="daily",
        kitchen="dev",
        variation="dev",
        tests=tests,
        outputs=Outputs(values={"rows": 10_000}),
        connections={"warehouse": "secret:warehouse"},
        producer="bench",
    )


class Client:
    """Produces RunTests and times their TestSuiteFinished, like a scheduler would."""

    def __init__(self, settings) -> None:
        options = aiokafka_options(settings)
        self.commands = TEST_COMMANDS.full_name(settings.topic_prefix)
        self.producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
        self.consumer = AIOKafkaConsumer(
            TEST_RESULTS.full_name(settings.topic_prefix),
            **options,
            group_id=f"bench-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
        )
        self.sent: dict[uuid.UUID, float] = {}
        self.latency_ms: dict[uuid.UUID, float] = {}
        self.done = asyncio.Condition()

    async def send(self, cmd: RunTests) -> None:
        self.sent[cmd.suite_id] = time.perf_counter()
        await self.producer.send_and_wait(self.commands, cmd.to_json(), key=cmd.kafka_key())

    async def read(self) -> None:
        async for record in self.consumer:
            message = decode_message(record.value)
            if isinstance(message, TestSuiteFinished) and message.suite_id in self.sent:
                self.latency_ms[message.suite_id] = (
                    time.perf_counter() - self.sent[message.suite_id]
                ) * 1000
                async with self.done:
                    self.done.notify_all()

    async def wait_for(self, n: int, deadline_s: float = 120) -> None:
        async with asyncio.timeout(deadline_s), self.done:
            await self.done.wait_for(lambda: len(self.latency_ms) >= n)


async def closed_loop(client: Client, tests: list[TestDefinition]) -> None:
    start = time.perf_counter()
    ids: list[uuid.UUID] = []
    base = len(client.latency_ms)
    for i in range(CLOSED_SUITES):
        # At most IN_FLIGHT suites outstanding: suite i leaves once i - IN_FLIGHT + 1 are done.
        await client.wait_for(base + max(0, i - IN_FLIGHT + 1))
        cmd = command(tests)
        ids.append(cmd.suite_id)
        await client.send(cmd)
    await client.wait_for(len(client.sent))
    elapsed = time.perf_counter() - start
    lat = [client.latency_ms[i] for i in ids]
    emit(
        "test_runner_throughput",
        mode="closed_loop",
        in_flight=IN_FLIGHT,
        consumers=CONSUMERS,
        suites=CLOSED_SUITES,
        tests=CLOSED_SUITES * len(tests),
        tests_per_s=round(CLOSED_SUITES * len(tests) / elapsed, 1),
        suites_per_s=round(CLOSED_SUITES / elapsed, 1),
        p50_suite_ms=percentiles(lat)["p50_ms"],
        p99_suite_ms=percentiles(lat)["p99_ms"],
    )


async def open_loop(client: Client, tests: list[TestDefinition]) -> None:
    total = OPEN_RATE_PER_S * OPEN_SECONDS
    before = len(client.sent)
    ids: list[uuid.UUID] = []
    start = time.perf_counter()
    for i in range(total):
        await asyncio.sleep(max(0.0, start + i / OPEN_RATE_PER_S - time.perf_counter()))
        cmd = command(tests)
        ids.append(cmd.suite_id)
        await client.send(cmd)
    await client.wait_for(before + total)
    lat = percentiles([client.latency_ms[i] for i in ids])
    emit(
        "test_runner_open_loop",
        mode="open_loop",
        consumers=CONSUMERS,
        rate_suites_per_s=OPEN_RATE_PER_S,
        tests_per_s_offered=OPEN_RATE_PER_S * len(tests),
        suites=total,
        tests=total * len(tests),
        p50_suite_ms=lat["p50_ms"],
        p90_suite_ms=lat["p90_ms"],
        p99_suite_ms=lat["p99_ms"],
        max_suite_ms=lat["max_ms"],
    )


async def main() -> None:
    configure("bench", level="WARNING")
    kafka, db = kafka_settings(), database_settings()
    await ensure_topics(kafka, topics=(TEST_COMMANDS, TEST_RESULTS))
    schema, data = fresh_schema(), fresh_schema()
    os.environ[WAREHOUSE_ENV] = db.url
    conn = await asyncpg.connect(db.url)
    await conn.execute(f"CREATE SCHEMA {data}")
    await conn.execute(
        f"CREATE TABLE {data}.facts AS"
        " SELECT g AS id, g % 10 AS bucket FROM generate_series(1, 10000) AS g"
    )
    tests = suite(f"{data}.facts")
    settings = TestRunnerSettings(kafka=kafka, database=db, db_schema=schema, consumers=CONSUMERS)
    deps = build(settings)
    client = Client(kafka)
    try:
        async with deps.runtime.running():
            await client.producer.start()
            await client.consumer.start()
            reader = asyncio.create_task(client.read())
            try:
                for _ in range(WARMUP):  # group joined, pools open, code paths warm
                    await client.send(command(tests))
                await client.wait_for(WARMUP, deadline_s=60)
                await closed_loop(client, tests)
                await open_loop(client, tests)
            finally:
                reader.cancel()
                await client.consumer.stop()
                await client.producer.stop()
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
