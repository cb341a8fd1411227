"""The outbox: a crash between commit and publish loses nothing and duplicates nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from structlog.testing import capture_logs

from sous_common.kafka import aiokafka_options, make_broker
from sous_common.outbox import OutboxRelay, add
from sous_common.relay import broker_publisher
from sous_contracts import decode_message
from sous_contracts.deadletter import DeadLetter
from sous_contracts.testing import sample_messages
from sous_contracts.topics import DEAD_LETTERS, ORDER_RUN_COMMANDS

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def _collect(settings, topic: str, seconds: float) -> list:
    consumer = AIOKafkaConsumer(
        topic,
        **aiokafka_options(settings),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list = []
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                out.extend(decode_message(r.value) for r in records)
    finally:
        await consumer.stop()
    return out


async def test_relay_killed_between_commit_and_publish(kafka_settings, pool, schema, servers):
    message_id = uuid.uuid4()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("outbox_child.py")),
        servers.database_url,
        schema,
        kafka_settings.topic_prefix,
        str(message_id),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ},
    )
    assert child.stdout is not None
    async with asyncio.timeout(30):
        assert await child.stdout.readline() == b"committed\n"
        assert await child.stdout.readline() == b"claimed\n"
    child.send_signal(signal.SIGKILL)
    assert await child.wait() == -signal.SIGKILL
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1
    assert await pool.fetchval("SELECT v FROM state") == 1

    broker = make_broker(kafka_settings, client_id="relay")
    async with broker:
        await broker.start()
        relay = OutboxRelay(pool, broker_publisher(broker), schema=schema)
        task = asyncio.create_task(relay.run())
        try:
            topic = ORDER_RUN_COMMANDS.full_name(kafka_settings.topic_prefix)
            got = await _collect(kafka_settings, topic, seconds=3)
        finally:
            relay.stop()
            await asyncio.wait_for(task, 10)
    assert [m.message_id for m in got] == [message_id]
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_relay_is_woken_by_notify_and_keeps_order(kafka_settings, pool, schema):
    broker = make_broker(kafka_settings, client_id="relay")
    base = sample_messages()[0]
    messages = [base.model_copy(update={"message_id": uuid.uuid4()}) for _ in range(50)]
    async with broker:
        await broker.start()
        # A long poll interval: only NOTIFY can make this fast.
        relay = OutboxRelay(pool, broker_publisher(broker), schema=schema, poll_interval_s=60)
        task = asyncio.create_task(relay.run())
        try:
            await asyncio.sleep(0.5)
            async with pool.acquire() as conn, conn.transaction():
                await add(conn, messages, schema=schema, prefix=kafka_settings.topic_prefix)
            topic = ORDER_RUN_COMMANDS.full_name(kafka_settings.topic_prefix)
            got = await _collect(kafka_settings, topic, seconds=3)
        finally:
            relay.stop()
            await asyncio.wait_for(task, 10)
    assert [m.message_id for m in got] == [m.message_id for m in messages]


async def test_rolled_back_transaction_publishes_nothing(kafka_settings, pool, schema):
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with pool.acquire() as conn, conn.transaction():
            await add(conn, sample_messages()[:1], schema=schema)
            raise Boom
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def _collect_until(settings, topic: str, done, timeout_s: float = 20.0) -> list:
    """Read `topic` from the start until `done(messages)` holds."""
    consumer = AIOKafkaConsumer(
        topic,
        **aiokafka_options(settings),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list = []
    try:
        async with asyncio.timeout(timeout_s):
            while not done(out):
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    out.extend(decode_message(r.value) for r in records)
    finally:
        await consumer.stop()
    return out


@pytest.mark.parametrize("holder", [False, True], ids=["pooled", "lock-holder"])
async def test_an_undeliverable_row_is_moved_aside_and_the_rest_flow(
    kafka_settings, pool, schema, holder
) -> None:
    before, after = (
        sample_messages()[0].model_copy(update={"message_id": uuid.uuid4()}) for _ in range(2)
    )
    huge = DeadLetter(
        reason="made too large to send",
        error_kind="invalid",
        source_topic="elsewhere",
        source_partition=0,
        source_offset=0,
        consumer="test",
        payload="x" * (kafka_settings.max_message_bytes + 100_000),
        payload_size=0,
    )
    async with pool.acquire() as conn, conn.transaction():
        await add(conn, [before, huge, after], schema=schema, prefix=kafka_settings.topic_prefix)
    broker = make_broker(kafka_settings, client_id="relay")
    async with broker:
        await broker.start()
        relay = OutboxRelay(
            pool, broker_publisher(broker), schema=schema, prefix=kafka_settings.topic_prefix
        )
        if holder:  # as the active relay does, on the connection that holds its lock
            async with pool.acquire() as conn:
                assert await relay.drain_once(conn) == 3
        else:
            assert await relay.drain() == 3
    commands = ORDER_RUN_COMMANDS.full_name(kafka_settings.topic_prefix)
    got = await _collect_until(kafka_settings, commands, lambda out: len(out) >= 2)
    assert [m.message_id for m in got] == [before.message_id, after.message_id]

    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    refused = await pool.fetchrow("SELECT message_id, reason, payload FROM outbox_refused")
    assert refused["message_id"] == huge.message_id
    assert "MessageSizeTooLargeError" in refused["reason"]
    assert bytes(refused["payload"]) == huge.to_json(), "the row is kept whole, not cut"

    letters_topic = DEAD_LETTERS.full_name(kafka_settings.topic_prefix)
    letters = await _collect_until(
        kafka_settings,
        letters_topic,
        lambda out: any(m.error_kind == "undeliverable" for m in out),
    )
    (letter,) = [m for m in letters if m.error_kind == "undeliverable"]
    assert letter.source_topic == letters_topic
    assert letter.payload_size == len(huge.to_json())
    assert "MessageSizeTooLargeError" in letter.reason


async def test_relay_survives_losing_its_lock_connection(kafka_settings, pool, schema):
    broker = make_broker(kafka_settings, client_id="relay")
    message = sample_messages()[0].model_copy(update={"message_id": uuid.uuid4()})
    # The session holding this schema's relay lock (the relay's lock and LISTEN connection).
    listening = (
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        f" AND objid::bigint = hashtext('sous-outbox:{schema}')::bigint & 4294967295"
    )
    async with broker:
        await broker.start()
        relay = OutboxRelay(pool, broker_publisher(broker), schema=schema, poll_interval_s=60)
        with capture_logs() as logs:
            task = asyncio.create_task(relay.run())
            try:
                async with asyncio.timeout(10):  # barrier: the relay holds its lock connection
                    while not (before := await pool.fetchval(listening)):
                        await asyncio.sleep(0.02)
                await pool.execute("SELECT pg_terminate_backend($1)", before)
                async with asyncio.timeout(10):  # it takes the lock again on a new connection
                    while (after := await pool.fetchval(listening)) in (None, before):
                        await asyncio.sleep(0.02)
                async with pool.acquire() as conn, conn.transaction():
                    await add(conn, [message], schema=schema, prefix=kafka_settings.topic_prefix)
                topic = ORDER_RUN_COMMANDS.full_name(kafka_settings.topic_prefix)
                got = await _collect(kafka_settings, topic, seconds=3)
            finally:
                relay.stop()
                await asyncio.wait_for(task, 10)
    assert after != before
    assert [m.message_id for m in got] == [message.message_id]  # woken by NOTIFY again
    assert not [e for e in logs if "released back to the pool" in str(e)]


async def test_a_row_committed_while_the_relay_publishes_is_not_left_behind(
    kafka_settings, pool, schema
):
    """The relay ends a round at a short batch, so a commit during it must start another."""
    broker = make_broker(kafka_settings, client_id="relay")
    base = sample_messages()[0]
    first, late = (base.model_copy(update={"message_id": uuid.uuid4()}) for _ in range(2))
    topic = ORDER_RUN_COMMANDS.full_name(kafka_settings.topic_prefix)
    consumer = AIOKafkaConsumer(
        topic, **aiokafka_options(kafka_settings), group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    relay: OutboxRelay | None = None
    async with broker:
        await broker.start()
        publish = broker_publisher(broker)
        committed_late = False

        async def publish_and_commit_another(topic, key, value, headers):
            # While the relay sends `first`, `late` commits and its NOTIFY reaches the relay.
            nonlocal committed_late
            if not committed_late:
                committed_late = True
                async with pool.acquire() as conn, conn.transaction():
                    await add(conn, [late], schema=schema, prefix=kafka_settings.topic_prefix)
                assert relay is not None
                await asyncio.wait_for(relay._wake.wait(), 10)  # its NOTIFY has arrived
            return await publish(topic, key, value, headers)

        # No polling to speak of: only the wake-up can move `late`.
        relay = OutboxRelay(pool, publish_and_commit_another, schema=schema, poll_interval_s=600)
        task = asyncio.create_task(relay.run())
        try:
            async with pool.acquire() as conn, conn.transaction():
                await add(conn, [first], schema=schema, prefix=kafka_settings.topic_prefix)
            seen: set[uuid.UUID] = set()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 15
            while late.message_id not in seen and loop.time() < deadline:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    seen.update(decode_message(r.value).message_id for r in records)
        finally:
            await consumer.stop()
            relay.stop()
            await asyncio.wait_for(task, 10)
    assert {first.message_id, late.message_id} <= seen


async def test_the_lock_holder_deletes_what_was_sent_with_its_next_read(
    kafka_settings, pool, db_settings, schema
):
    """Rows sent in a round go with the next batch's read, and the rest when the relay idles."""
    base = sample_messages()[0]
    messages = [base.model_copy(update={"message_id": uuid.uuid4()}) for _ in range(25)]
    async with pool.acquire() as conn, conn.transaction():  # before the relay listens: 1 round
        await add(conn, messages, schema=schema, prefix=kafka_settings.topic_prefix)
    statements: list[str] = []

    async def init(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(lambda query: statements.append(query.query))

    logged = await asyncpg.create_pool(
        db_settings.url,
        min_size=1,
        max_size=2,
        init=init,
        server_settings={"search_path": f"{schema},public"},
    )
    broker = make_broker(kafka_settings, client_id="relay")
    try:
        async with broker:
            await broker.start()
            relay = OutboxRelay(
                logged, broker_publisher(broker), schema=schema, batch_size=10, poll_interval_s=60
            )
            task = asyncio.create_task(relay.run())
            try:
                topic = ORDER_RUN_COMMANDS.full_name(kafka_settings.topic_prefix)
                got = await _collect_until(kafka_settings, topic, lambda out: len(out) >= 25)
                async with asyncio.timeout(10):  # idle now: it deletes the last batch's rows
                    while await pool.fetchval("SELECT count(*) FROM outbox"):
                        await asyncio.sleep(0.02)
                sent_before_stop = list(statements)  # stop() starts one more round
            finally:
                relay.stop()
                await asyncio.wait_for(task, 10)
    finally:
        await logged.close()
    assert [m.message_id for m in got] == [m.message_id for m in messages]
    reads = [s for s in sent_before_stop if "SELECT id, message_id, topic" in s]
    deletes = [s for s in sent_before_stop if s.startswith("DELETE FROM outbox")]
    assert len(reads) == 3  # batches of 10, 10 and 5
    assert [("WITH acked AS (DELETE" in s) for s in reads] == [False, True, True]
    assert len(deletes) == 1  # the last batch's, going idle
