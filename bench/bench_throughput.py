"""Sustained throughput (DESIGN §6): five-step recipes with one test per step.

Every service runs as its own process; runs are started open loop at a fixed rate; prints
completed runs/s and the start → finish latency of runs, with the machine's core count.
Each service's `/metrics` is scraped every `BENCH_SCRAPE_S` seconds (5) meanwhile, as a
Prometheus would, so the figures include what metrics cost.

`BENCH_STEP=python` makes the steps python functions with no tests (`BENCH_COLD=1`: each in
a fresh interpreter, as before warm steps); the default is noop steps with one test each.
`BENCH_REPLICAS=2` runs two replicas of each service (one consumer group and one schema per
service, as a deployment scales); `duplicate_effects` counts runs that ended more than once
or attempts dispatched or started more than once, which must stay 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from _common import (
    SIGNING_ENVIRONMENT,
    cpu_seconds,
    database_settings,
    emit,
    fresh_schema,
    kafka_settings,
    percentiles,
    server_cpu_seconds,
    signed,
)
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sous_common.kafka import aiokafka_options
from sous_common.topic_admin import ensure_topics
from sous_contracts import decode_message
from sous_contracts.common import RunStatus
from sous_contracts.envelope import Envelope
from sous_contracts.registry import EntityKind, RegistryEntityChanged
from sous_contracts.runs import OrderRunFinished, StartOrderRun
from sous_contracts.steps import ExecuteStep, StepStarted
from sous_contracts.topics import RUN_EVENTS, STEP_COMMANDS, STEP_EVENTS, topic_for

RATE_PER_S = float(os.environ.get("BENCH_RATE", "40"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "25"))
STEP_KIND = os.environ.get("BENCH_STEP", "noop")
COLD = os.environ.get("BENCH_COLD", "") not in ("", "0")
SCRAPE_S = float(os.environ.get("BENCH_SCRAPE_S", "5"))
REPLICAS = int(os.environ.get("BENCH_REPLICAS", "1"))
FINISHED = OrderRunFinished.model_fields["type"].default.encode()
TEST = {"name": "n", "check": {"kind": "metric", "output": "n", "op": ">", "value": 0}}
STEPS_FOLDER = Path(tempfile.mkdtemp(prefix="sous-bench-steps-"))
(STEPS_FOLDER / "bench_steps.py").write_text("def step(i):\n    return {'n': i + 1}\n")


def _step(i: int) -> dict[str, Any]:
    if STEP_KIND == "python":
        run = {"kind": "python", "function": "bench_steps:step", "kwargs": {"i": i}, "cold": COLD}
        return {"run": run}
    return {"run": {"kind": "noop", "outputs": {"n": i + 1}}, "tests": [TEST]}


STEPS = {f"s{i}": {**_step(i), **({"needs": [f"s{i - 1}"]} if i else {})} for i in range(5)}
REGISTRY = [
    RegistryEntityChanged(
        entity_id="domain:bench",
        kind=EntityKind.DOMAIN,
        name="bench",
        version="sha256:d",
        spec={"domain": "bench"},
    ),
    RegistryEntityChanged(
        entity_id="kitchen:prod",
        kind=EntityKind.KITCHEN,
        name="prod",
        version="sha256:k",
        spec={"kitchen": "prod"},
    ),
    RegistryEntityChanged(
        entity_id="recipe:bench/five",
        kind=EntityKind.RECIPE,
        domain="bench",
        name="five",
        version="sha256:r",
        spec={
            "recipe": "five",
            "steps": STEPS,
            "concurrency": {"limit": 10_000},
            "variations": {"prod": {"kitchen": "prod"}},
        },
    ),
]
SERVICES = {
    "scheduler": ("sous_scheduler.app:create_app", "SOUS_SCHEDULER_SCHEMA_NAME"),
    "executor": ("sous_executor.app:create_app", "SOUS_EXECUTOR_SCHEMA_NAME"),
    "test-runner": ("sous_test_runner.app:create_app", "SOUS_TEST_RUNNER_DB_SCHEMA"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def scrape(urls: list[str]) -> None:
    """Read every service's metrics now and then, as Prometheus does."""
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            for url in urls:
                with contextlib.suppress(httpx.HTTPError):
                    (await client.get(f"{url}/metrics")).raise_for_status()
            await asyncio.sleep(SCRAPE_S)


async def main() -> None:
    kafka, db = kafka_settings(), database_settings()
    await ensure_topics(kafka)
    procs: list[subprocess.Popen[bytes]] = []
    names: list[str] = []
    ops: list[str] = []
    schemas = {name: fresh_schema() for name in SERVICES}
    for name, (factory, schema_var) in [(n, f) for n, f in SERVICES.items()] * REPLICAS:
        url = f"http://127.0.0.1:{free_port()}"
        names.append(name)
        ops.append(url)
        env = {
            **os.environ,
            **SIGNING_ENVIRONMENT,
            "SOUS_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
            "SOUS_DATABASE_URL": db.url,
            schema_var: schemas[name],
            "SOUS_EXECUTOR_CONCURRENCY": "32",
            "SOUS_EXECUTOR_PYTHON_PATH": json.dumps([str(STEPS_FOLDER)]),
            "SOUS_OPS_HOST": "127.0.0.1",
            "SOUS_OPS_PORT": url.rsplit(":", 1)[1],
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "faststream", "run", "--factory", factory],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    options = aiokafka_options(kafka)
    producer = AIOKafkaProducer(**options, acks="all")
    # While the load runs, only the runs' ends are read (by their type header): what this
    # process decodes takes CPU from the services measured. Dispatches and starts are
    # counted for duplicates after the measured window (`duplicates`).
    consumer = AIOKafkaConsumer(
        RUN_EVENTS.full_name(kafka.topic_prefix),
        **options,
        group_id=None,
        auto_offset_reset="latest",
    )
    await producer.start()
    await consumer.start()

    async def send(m: Envelope) -> None:
        await producer.send_and_wait(
            topic_for(m).full_name(kafka.topic_prefix),
            (value := m.to_json()),
            key=m.kafka_key(),
            headers=signed(value),
        )

    try:
        for m in REGISTRY:
            await send(m)
        await asyncio.sleep(10)  # services up and in their groups
        started: dict[uuid.UUID, float] = {}
        latencies: list[float] = []
        failed = 0
        total = int(RATE_PER_S * SECONDS)
        effects: Counter[tuple[str, object]] = Counter()

        async def reader() -> None:
            nonlocal failed
            while True:
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    for r in records:
                        if ("type", FINISHED) not in r.headers:
                            continue
                        m = decode_message(r.value)
                        if isinstance(m, OrderRunFinished):
                            effects["end", m.order_run_id] += 1
                            if m.order_run_id in started:
                                ms = (time.time() - started.pop(m.order_run_id)) * 1000
                                latencies.append(ms)
                                failed += m.status is not RunStatus.SUCCEEDED

        task = asyncio.create_task(reader())
        scraper = asyncio.create_task(scrape(ops))
        cpu_before = [cpu_seconds(p.pid) for p in procs]
        servers_before = server_cpu_seconds()
        t0 = time.perf_counter()
        for i in range(total):
            await asyncio.sleep(max(0.0, t0 + i / RATE_PER_S - time.perf_counter()))
            run_id = uuid.uuid4()
            started[run_id] = time.time()
            await send(
                StartOrderRun(order_run_id=run_id, domain="bench", recipe="five", variation="prod")
            )
        deadline = time.perf_counter() + 120
        while started and time.perf_counter() < deadline:
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - t0
        # CPU per finished run: what each service costs, whatever else the machine runs.
        spent: Counter[str] = Counter()
        for name, p, before in zip(names, procs, cpu_before, strict=True):
            spent[name] += cpu_seconds(p.pid) - before
        for name, seconds in server_cpu_seconds().items():
            spent[name] += seconds - servers_before[name]
        # Cores each part kept busy on average (a service's replicas together): the busiest
        # is where more runs per second would have to come from.
        cores = {f"cores_{n.replace('-', '_')}": round(s / elapsed, 2) for n, s in spent.items()}
        cpu_ms = {
            f"cpu_ms_per_run_{name.replace('-', '_')}": round(
                spent[name] * 1000 / max(1, len(latencies)), 1
            )
            for name in SERVICES
        }
        task.cancel()
        scraper.cancel()
        effects.update(await duplicates(kafka))
        emit(
            "throughput_5_step_runs",
            step=STEP_KIND,
            cold=COLD if STEP_KIND == "python" else None,
            cpu_count=os.cpu_count(),
            replicas=REPLICAS,
            offered_runs_per_s=RATE_PER_S,
            runs=total,
            finished=len(latencies),
            failed=failed,
            unfinished=len(started),
            runs_per_s=round(len(latencies) / elapsed, 2),
            duplicate_effects=sum(1 for n in effects.values() if n > 1),
            audited_attempts=sum(1 for kind, _ in effects if kind == ExecuteStep.__name__),
            **cpu_ms,
            **cores,
            busiest=max(spent, key=lambda n: spent[n]),
            **{f"run_{k}": v for k, v in percentiles(latencies).items()},
        )
    finally:
        await consumer.stop()
        await producer.stop()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


async def duplicates(kafka: Any) -> Counter[tuple[str, object]]:
    """Count each attempt's dispatches and starts, reading the step topics from the start."""
    consumer = AIOKafkaConsumer(
        STEP_COMMANDS.full_name(kafka.topic_prefix),
        STEP_EVENTS.full_name(kafka.topic_prefix),
        **aiokafka_options(kafka),
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    seen: Counter[tuple[str, object]] = Counter()
    try:
        while not consumer.assignment():
            await asyncio.sleep(0.05)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    m = decode_message(r.value)
                    if isinstance(m, ExecuteStep | StepStarted):
                        seen[m.type, (m.step_run_id, m.attempt)] += 1
    finally:
        await consumer.stop()
    return seen


if __name__ == "__main__":
    asyncio.run(main())
