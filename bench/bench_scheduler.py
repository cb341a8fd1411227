"""Scheduler latency figures (DESIGN §6), with the scheduler as its own process.

- trigger latency: upstream DomainRunCompleted produced → the downstream run's first
  ExecuteStep produced (broker timestamp of that record), open loop at a fixed rate;
- step dispatch: StepFinished (no tests) sent → the next ExecuteStep produced, over
  five-step noop chains answered at once by a stand-in executor.

`BENCH_BESIDE_RATE=30` starts the five-step chains at that rate *while* the trigger events
go (issue 10: trigger latency while 30 runs/s run beside it); by default they follow them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

from _common import (
    SIGNING_ENVIRONMENT,
    database_settings,
    emit,
    fresh_schema,
    kafka_settings,
    percentiles,
    signed,
)
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sous_common.kafka import aiokafka_options
from sous_common.topic_admin import ensure_topics
from sous_contracts import decode_message
from sous_contracts.common import RunStatus, StepStatus
from sous_contracts.envelope import Envelope
from sous_contracts.registry import EntityKind, RegistryEntityChanged
from sous_contracts.runs import DomainRunCompleted, StartOrderRun
from sous_contracts.steps import ExecuteStep, StepFinished, StepStarted
from sous_contracts.topics import STEP_COMMANDS, topic_for

RATE_PER_S = 20
SECONDS = 10
CHAINS = 60
CHAINS_PER_S = 10
BESIDE_RATE = float(os.environ.get("BENCH_BESIDE_RATE", "0"))


def _entity(kind: EntityKind, name: str, spec: dict, domain: str | None = None) -> Envelope:
    return RegistryEntityChanged(
        entity_id=f"{kind.value}:{domain}/{name}",
        kind=kind,
        domain=domain,
        name=name,
        version="sha256:bench",
        spec=spec,
    )


REGISTRY = [
    _entity(EntityKind.KITCHEN, "prod", {"kitchen": "prod"}),
    # Completions of a domain the registry does not hold are refused.
    *(_entity(EntityKind.DOMAIN, d, {"domain": d}) for d in ("up", "down", "chain")),
    _entity(
        EntityKind.RECIPE,
        "down",
        {
            "recipe": "down",
            "steps": {"a": {"run": {"kind": "noop"}}},
            "variations": {"prod": {"kitchen": "prod"}},
            "concurrency": {"limit": 1000},
            "triggers": [{"on": {"domain": "up"}, "variation": "prod"}],
        },
        "down",
    ),
    _entity(
        EntityKind.RECIPE,
        "chain",
        {
            "recipe": "chain",
            "concurrency": {"limit": 1000},
            "steps": {
                f"s{i}": (
                    {"run": {"kind": "noop"}, "needs": [f"s{i - 1}"]}
                    if i
                    else {"run": {"kind": "noop"}}
                )
                for i in range(5)
            },
            "variations": {"prod": {"kitchen": "prod"}},
        },
        "chain",
    ),
]


async def main() -> None:
    kafka, db = kafka_settings(), database_settings()
    await ensure_topics(kafka)
    schema = fresh_schema()
    env = {
        **os.environ,
        **SIGNING_ENVIRONMENT,
        "SOUS_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "SOUS_SCHEDULER_SCHEMA_NAME": schema,
        "SOUS_DATABASE_URL": db.url,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "faststream", "run", "--factory", "sous_scheduler.app:create_app"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    options = aiokafka_options(kafka)
    producer = AIOKafkaProducer(**options, acks="all", linger_ms=0)
    consumer = AIOKafkaConsumer(
        STEP_COMMANDS.full_name(kafka.topic_prefix),
        **options,
        group_id=None,
        auto_offset_reset="latest",
    )
    await producer.start()
    await consumer.start()

    async def send(m: Envelope) -> float:
        t = time.time()
        await producer.send_and_wait(
            topic_for(m).full_name(kafka.topic_prefix),
            (value := m.to_json()),
            key=m.kafka_key(),
            headers=signed(value),
        )
        return t

    try:
        for m in REGISTRY:
            await send(m)
        await asyncio.sleep(8)  # scheduler up, registry read, partitions assigned
        sent: dict[uuid.UUID, float] = {}
        trigger_ms: list[float] = []
        dispatch_ms: list[float] = []
        finished_at: dict[tuple[uuid.UUID, str], float] = {}
        answering: set[asyncio.Task[None]] = set()

        async def reader() -> None:
            while True:
                for records in (await consumer.getmany(timeout_ms=50)).values():
                    for r in records:
                        cmd = decode_message(r.value)
                        if not isinstance(cmd, ExecuteStep):
                            continue
                        if cmd.domain == "down" and cmd.correlation_id in sent:
                            trigger_ms.append(r.timestamp - sent.pop(cmd.correlation_id) * 1000)
                        elif cmd.domain == "chain":
                            prev = f"s{int(cmd.step[1:]) - 1}"
                            if (t := finished_at.pop((cmd.order_run_id, prev), None)) is not None:
                                dispatch_ms.append(r.timestamp - t * 1000)
                            answering.add(asyncio.create_task(answer(cmd)))

        async def answer(cmd: ExecuteStep) -> None:
            ids = {
                "order_run_id": cmd.order_run_id,
                "step_run_id": cmd.step_run_id,
                "attempt": cmd.attempt,
                "worker_id": "bench",
            }
            await send(StepStarted(step=cmd.step, **ids))
            finished_at[(cmd.order_run_id, cmd.step)] = await send(
                StepFinished(step=cmd.step, status=StepStatus.SUCCEEDED, **ids)
            )

        async def chains(count: int, per_s: float) -> None:
            begin = time.perf_counter()
            for i in range(count):
                await asyncio.sleep(max(0.0, begin + i / per_s - time.perf_counter()))
                await send(
                    StartOrderRun(
                        order_run_id=uuid.uuid4(), domain="chain", recipe="chain", variation="prod"
                    )
                )

        task = asyncio.create_task(reader())
        chain_count = int(BESIDE_RATE * SECONDS) if BESIDE_RATE else CHAINS
        beside = asyncio.create_task(chains(chain_count, BESIDE_RATE)) if BESIDE_RATE else None
        start = time.perf_counter()
        for i in range(RATE_PER_S * SECONDS):
            await asyncio.sleep(max(0.0, start + i / RATE_PER_S - time.perf_counter()))
            root = uuid.uuid4()
            event = DomainRunCompleted(
                domain="up",
                recipe="job",
                kitchen="prod",
                status=RunStatus.SUCCEEDED,
                correlation_id=root,
                external=True,
            )
            sent[root] = time.time()
            await send(event)
        if beside is not None:
            await beside
        else:
            await chains(CHAINS, CHAINS_PER_S)
        deadline = time.perf_counter() + 30
        while (sent or len(dispatch_ms) < chain_count * 4) and time.perf_counter() < deadline:
            await asyncio.sleep(0.2)
        task.cancel()
        emit(
            "trigger_latency",
            rate_per_s=RATE_PER_S,
            beside_runs_per_s=BESIDE_RATE,
            cpu_count=os.cpu_count(),
            events=len(trigger_ms),
            lost=len(sent),
            **percentiles(trigger_ms),
        )
        emit(
            "step_dispatch_latency",
            chains_per_s=BESIDE_RATE or CHAINS_PER_S,
            cpu_count=os.cpu_count(),
            transitions=len(dispatch_ms),
            **percentiles(dispatch_ms),
        )
    finally:
        await consumer.stop()
        await producer.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


if __name__ == "__main__":
    asyncio.run(main())
