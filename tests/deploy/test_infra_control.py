"""`sous infra stop|start kafka|postgres` on a private instance: one server goes away and comes
back on the same port with its data, while the other keeps answering."""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def round_trip(bootstrap: str, topic: str, value: bytes) -> list[bytes]:
    """Produce `value` (acks=all), then read the topic from its start: every value it holds."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while value not in seen:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    seen.extend(r.value for r in records)
    finally:
        await consumer.stop()
    return seen


async def answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return False
    try:
        return await conn.fetchval("SELECT count(*) FROM kept") >= 0
    finally:
        await conn.close()


async def test_each_server_stops_and_starts_alone_on_its_port(private_infra) -> None:
    infra = private_infra
    servers = await asyncio.to_thread(infra.up)
    shared = {os.environ.get("SOUS_KAFKA_BOOTSTRAP"), os.environ.get("SOUS_DATABASE_URL")}
    assert not {servers.kafka_bootstrap, servers.database_url} & shared
    topic = f"t{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=servers.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    conn = await asyncpg.connect(servers.database_url)
    await conn.execute("CREATE TABLE IF NOT EXISTS kept (n int)")
    await conn.close()
    assert await round_trip(servers.kafka_bootstrap, topic, b"one") == [b"one"]

    await infra.stop("kafka")
    status = infra.run("status", check=False)
    assert status.returncode == 3
    assert "kafka:    stopped" in status.stdout
    assert "postgres: running" in status.stdout
    assert await answers(servers.database_url)

    await infra.start("kafka")
    assert (await asyncio.to_thread(infra.up)) == servers  # same ports, nothing else started
    assert await round_trip(servers.kafka_bootstrap, topic, b"two") == [b"one", b"two"]

    await infra.stop("postgres")
    assert not await answers(servers.database_url)
    assert "kafka:    running" in infra.run("status", check=False).stdout
    assert await round_trip(servers.kafka_bootstrap, topic, b"three") == [b"one", b"two", b"three"]

    await infra.start("postgres")
    assert await answers(servers.database_url)
    assert infra.run("status").returncode == 0
