"""Executor throughput: noop steps per second with one replica and with two.

Each replica is a real process (`faststream run --factory sous_executor.app:create_app`),
all in one consumer group and one schema. A burst of ExecuteSteps (spread over many order
runs, so over every partition) is produced at once; the figure is steps finished per second
from the first send to the last StepFinished seen on the events topic.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _common import emit, fresh_schema, kafka_settings
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sous_common.kafka import aiokafka_options
from sous_common.topic_admin import ensure_topics
from sous_contracts import decode_message
from sous_contracts.steps import ExecuteStep, StepFinished
from sous_contracts.topics import STEP_COMMANDS, STEP_EVENTS

STEPS = int(os.environ.get("BENCH_EXECUTOR_STEPS", "2000"))
WARMUP = 60


def noop(run: uuid.UUID | None = None) -> ExecuteStep:
    run = run or uuid.uuid4()
    return ExecuteStep(
        order_run_id=run,
        correlation_id=run,
        step_run_id=uuid.uuid4(),
        step="noop",
        domain="bench",
        kitchen="dev",
        kind="noop",
        spec={"outputs": {"ok": True}},
        producer="bench",
    )


def start_replica(prefix: str, schema: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SOUS_KAFKA_TOPIC_PREFIX": prefix,
        "SOUS_EXECUTOR_SCHEMA_NAME": schema,
        "SOUS_EXECUTOR_LOG_LEVEL": "WARNING",
    }
    faststream = Path(sys.executable).with_name("faststream")
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(faststream), "run", "--factory", "sous_executor.app:create_app"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def measure(replicas: int) -> None:
    kafka = kafka_settings()
    await ensure_topics(kafka, topics=(STEP_COMMANDS, STEP_EVENTS))
    schema = fresh_schema()
    options = aiokafka_options(kafka)
    producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True, linger_ms=1)
    consumer = AIOKafkaConsumer(
        STEP_EVENTS.full_name(kafka.topic_prefix),
        **options,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await producer.start()
    await consumer.start()
    finished: dict[uuid.UUID, StepFinished] = {}
    pending: set[uuid.UUID] = set()
    all_done = asyncio.Event()
    last_at = [0.0]

    async def read() -> None:
        while True:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                for r in records:
                    m = decode_message(r.value, STEP_EVENTS.message_types())
                    if isinstance(m, StepFinished):
                        finished[m.step_run_id] = m
                        last_at[0] = time.perf_counter()
                        pending.discard(m.step_run_id)
                        if not pending:
                            all_done.set()

    async def run(commands: list[ExecuteStep], deadline_s: float) -> None:
        topic = STEP_COMMANDS.full_name(kafka.topic_prefix)
        all_done.clear()
        pending.update(c.step_run_id for c in commands)
        sent = [
            await producer.send(
                topic, c.to_json(), key=c.kafka_key(), headers=[("type", b"ExecuteStep")]
            )
            for c in commands
        ]
        await asyncio.gather(*sent)
        await asyncio.wait_for(all_done.wait(), deadline_s)

    reader = asyncio.create_task(read())
    logdir = Path(tempfile.mkdtemp(prefix="bench-executor-"))
    procs = [
        start_replica(kafka.topic_prefix, schema, logdir / f"replica{i}.log")
        for i in range(replicas)
    ]
    try:
        # Warm up until every replica has finished steps (all are in the group).
        async with asyncio.timeout(90):
            while True:
                batch = [noop() for _ in range(WARMUP)]
                await run(batch, 60)
                workers = {finished[c.step_run_id].worker_id for c in batch}
                if len(workers) >= replicas:
                    break
        commands = [noop() for _ in range(STEPS)]
        began = time.perf_counter()
        await run(commands, 300)
        elapsed = last_at[0] - began
        emit(
            "executor_noop_throughput",
            replicas=replicas,
            steps=STEPS,
            steps_per_s=round(STEPS / elapsed, 1),
            seconds=round(elapsed, 3),
        )
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        reader.cancel()
        await consumer.stop()
        await producer.stop()


async def main() -> None:
    for replicas in (1, 2):
        await measure(replicas)


if __name__ == "__main__":
    asyncio.run(main())
