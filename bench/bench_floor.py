"""The floor every later budget is compared with (DESIGN §6).

- Kafka round trip: publish with the project's broker factory → a subscriber in the same
  process receives it; open loop at a fixed rate.
- PostgreSQL: one transaction that updates a state row and adds an outbox row, as every
  service does per message; run back to back.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
from _common import database_settings, emit, fresh_schema, kafka_settings, percentiles

from sous_common.db import create_pool
from sous_common.kafka import make_broker
from sous_common.migrate import common_migrations, migrate
from sous_common.outbox import add
from sous_common.subscribing import consumer_options
from sous_common.topic_admin import ensure_topics
from sous_contracts.testing import sample_messages
from sous_contracts.topics import ORDER_RUN_COMMANDS

RATE_PER_S = 200
SECONDS = 5
WARMUP = 50


async def kafka_round_trip() -> None:
    settings = kafka_settings()
    await ensure_topics(settings, topics=(ORDER_RUN_COMMANDS,))
    topic = ORDER_RUN_COMMANDS.full_name(settings.topic_prefix)
    broker = make_broker(settings, client_id="bench")
    sent: dict[bytes, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    total = RATE_PER_S * SECONDS + WARMUP

    @broker.subscriber(topic, **consumer_options("bench-floor"))
    async def on_message(body: bytes) -> None:
        key = body[:16]
        latencies.append((time.perf_counter() - sent.pop(key)) * 1000)
        if len(latencies) >= total:
            done.set()

    async with broker:
        await broker.start()
        await asyncio.sleep(2)  # partitions assigned
        start = time.perf_counter()
        for i in range(total):
            # Open loop: each message leaves at its scheduled time, whatever came back.
            await asyncio.sleep(max(0.0, start + i / RATE_PER_S - time.perf_counter()))
            key = f"{i:016d}".encode()
            sent[key] = time.perf_counter()
            await broker.publish(key + b"-payload", topic, key=key)
        await asyncio.wait_for(done.wait(), 30)
    emit(
        "kafka_round_trip",
        rate_per_s=RATE_PER_S,
        messages=RATE_PER_S * SECONDS,
        **percentiles(latencies[WARMUP:]),
    )


async def postgres_transaction() -> None:
    db = database_settings()
    schema = fresh_schema()
    conn = await asyncpg.connect(db.url)
    await migrate(conn, schema, common_migrations())
    await conn.execute(f'CREATE TABLE "{schema}".state (id int PRIMARY KEY, n bigint)')
    await conn.execute(f'INSERT INTO "{schema}".state VALUES (1, 0)')
    pool = await create_pool(db, schema=schema)
    message = sample_messages()[0]
    latencies: list[float] = []
    try:
        for i in range(2000 + WARMUP):
            t0 = time.perf_counter()
            async with pool.acquire() as c, c.transaction():
                await c.execute("UPDATE state SET n = n + 1 WHERE id = 1")
                await add(c, [message], schema=schema)
            if i >= WARMUP:
                latencies.append((time.perf_counter() - t0) * 1000)
        emit("postgres_state_plus_outbox_tx", transactions=len(latencies), **percentiles(latencies))
    finally:
        await pool.close()
        await conn.close()


async def main() -> None:
    await kafka_round_trip()
    await postgres_transaction()


if __name__ == "__main__":
    asyncio.run(main())
