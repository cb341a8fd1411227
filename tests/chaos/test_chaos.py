"""Chaos: the services as processes on a private instance, killed, stopped and scaled while a
cross-domain workload runs; then every promise is checked on the topics and the databases.

Small by default (part of `make test`); `SOUS_CHAOS_SIZE=large` for the long one. The seed
is printed; `SOUS_CHAOS_SEED=<seed>` replays the same choices.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from sous_common.kafka import aiokafka_options
from sous_common.settings import KafkaSettings
from sous_common.topic_admin import ensure_topics
from sous_contracts.runs import StartOrderRun
from sous_contracts.topics import topic_for
from tests.chaos import workload
from tests.chaos.faults import Chaos
from tests.chaos.fleet import Fleet
from tests.chaos.invariants import FINAL, check, dumps
from tests.conftest import TEST_PARTITIONS
from tests.scheduler.standins import send
from tests.signing import signed_headers

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.faults,
    pytest.mark.chaos,
    pytest.mark.slow,
]

SIZES = {
    # rounds of every fault, seconds between two commands, outage length, drain deadline
    "small": {"rounds": 1, "pace_s": 0.7, "outage_s": 15.0, "drain_s": 150.0},
    "large": {"rounds": 3, "pace_s": 0.3, "outage_s": 30.0, "drain_s": 600.0},
}


async def _load(kafka: KafkaSettings, commands: list[StartOrderRun], pace_s: float, done) -> list:
    """Send commands one by one every `pace_s` until the chaos is over; retry through outages."""
    sent: list[StartOrderRun] = []
    producer = None
    for command in commands:
        if done.is_set():
            break
        while True:
            try:
                if producer is None:
                    producer = AIOKafkaProducer(**aiokafka_options(kafka), acks="all")
                    await producer.start()
                value = command.to_json()
                await asyncio.wait_for(
                    producer.send_and_wait(
                        topic_for(command).full_name(kafka.topic_prefix),
                        value,
                        key=command.kafka_key(),
                        headers=signed_headers(value),
                    ),
                    10,
                )
                break
            except Exception:  # the broker is away: same command again (same message id)
                if producer is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(producer.stop(), 5)
                producer = None
                await asyncio.sleep(1)
        sent.append(command)
        await asyncio.sleep(pace_s)
    if producer is not None:
        await producer.stop()
    return sent


async def _supervise(fleet: Fleet) -> None:
    while True:
        await fleet.revive()
        await asyncio.sleep(1)


async def _registry_read(database_url: str, schema: str, count: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(60):
            while not (
                await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.registry")
                and await conn.fetchval(f"SELECT count(*) FROM {schema}.registry") >= count
            ):
                await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def _drained(database_url: str, schema: str, sent: list, deadline_s: float) -> None:
    """Wait until the scheduler took in every command and holds no run that is not final."""
    ids = [c.order_run_id for c in sent]
    conn = await asyncpg.connect(database_url)
    known, open_runs = 0, 0
    try:
        async with asyncio.timeout(deadline_s):
            while True:
                known = await conn.fetchval(
                    f"SELECT count(*) FROM {schema}.runs WHERE id = ANY($1::uuid[])", ids
                )
                open_runs = await conn.fetchval(
                    f"SELECT count(*) FROM {schema}.runs WHERE NOT phase = ANY($1::text[])",
                    list(FINAL),
                )
                if known == len(ids) and open_runs == 0:
                    return
                await asyncio.sleep(0.5)
    except TimeoutError:
        stuck = await conn.fetch(
            f"SELECT id, domain, recipe, phase, state FROM {schema}.runs"
            " WHERE NOT phase = ANY($1::text[]) LIMIT 5",
            list(FINAL),
        )
        raise AssertionError(
            f"not drained in {deadline_s:g} s: {known} of {len(ids)} commands taken in,"
            f" {open_runs} runs not final, e.g. {[dict(r) for r in stuck]}"
        ) from None
    finally:
        await conn.close()


async def test_chaos_keeps_every_promise(private_infra, tmp_path) -> None:
    size = os.environ.get("SOUS_CHAOS_SIZE", "small")
    seed = int(os.environ.get("SOUS_CHAOS_SEED") or random.randrange(2**32))
    print(f"chaos: size={size} seed={seed} (replay with SOUS_CHAOS_SEED={seed})", flush=True)
    shape = SIZES[size]
    began = time.monotonic()
    servers = await asyncio.to_thread(private_infra.up)
    suffix = uuid.uuid4().hex[:10]
    kafka = KafkaSettings(bootstrap=servers.kafka_bootstrap, topic_prefix=f"c{suffix}.")
    await ensure_topics(kafka, partitions=TEST_PARTITIONS)
    data, side = f"d_{suffix}", tmp_path / "shell-effects"
    conn = await asyncpg.connect(servers.database_url)
    try:
        await conn.execute(f"CREATE SCHEMA {data}")
        await conn.execute(f"CREATE TABLE {data}.effects (run_id uuid NOT NULL, step text)")
    finally:
        await conn.close()
    registry = workload.registry(data, side)
    await send(kafka, registry)

    fleet = Fleet(kafka, servers, tmp_path, suffix)
    chaos = Chaos(fleet, private_infra, random.Random(seed), shape["outage_s"])
    commands = workload.commands(random.Random(seed + 1), 10_000)
    try:
        for role in ("scheduler", "executor", "test_runner"):
            await fleet.start(role)
            fleet.wanted[role] = 1
        supervisor = asyncio.create_task(_supervise(fleet))
        await _registry_read(servers.database_url, f"s_{suffix}", len(registry))
        over = asyncio.Event()
        load = asyncio.create_task(_load(kafka, commands, shape["pace_s"], over))
        try:
            await chaos.run(shape["rounds"])
        finally:
            over.set()
            sent = await load
        await _drained(servers.database_url, f"s_{suffix}", sent, shape["drain_s"])
        report = await check(kafka, servers.database_url, suffix, data, side, sent)
    finally:
        with contextlib.suppress(UnboundLocalError):
            supervisor.cancel()
        await fleet.stop_all()
    report.figures |= {
        "size": size,
        "seed": seed,
        "faults": dict(chaos.injected),
        "replicas_exited_by_themselves": fleet.exits,
        "wall_s": round(time.monotonic() - began, 1),
    }
    print(f"chaos: {dumps(report)}", flush=True)
    assert not report.violations, f"seed {seed}: {report.violations}"
