"""Garbage goes to the dead-letter topic with its reason; good messages behind it still land."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Annotated

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import Field

from sous_common.kafka import aiokafka_options, make_broker
from sous_common.subscribing import consumer_options, guard_broker
from sous_contracts import decode_message
from sous_contracts.deadletter import DeadLetter
from sous_contracts.steps import StepFinished, StepHeartbeat, StepStarted
from sous_contracts.testing import sample_messages
from sous_contracts.topics import DEAD_LETTERS, STEP_EVENTS

pytestmark = pytest.mark.kafka

StepEvent = Annotated[StepStarted | StepHeartbeat | StepFinished, Field(discriminator="type")]


async def _read_all(settings, topic: str, n: int, timeout: float = 30) -> list:
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
        async with asyncio.timeout(timeout):
            while len(out) < n:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    out.extend(records)
    finally:
        await consumer.stop()
    return out


async def test_poison_messages_are_dead_lettered_and_good_ones_handled(kafka_settings) -> None:
    settings = kafka_settings.model_copy(update={"max_message_bytes": 10_000})
    topic = STEP_EVENTS.full_name(settings.topic_prefix)
    handled: list[uuid.UUID] = []
    broker = make_broker(settings, client_id="test")
    guard = guard_broker(broker, settings, consumer="sous-test")

    @broker.subscriber(topic, **consumer_options("sous-test"))
    async def on_step_event(event: StepEvent) -> None:
        handled.append(event.message_id)

    started = next(m for m in sample_messages() if isinstance(m, StepStarted))
    good = [started.model_copy(update={"message_id": uuid.uuid4()}) for _ in range(3)]
    missing = json.loads(good[0].to_json())
    del missing["worker_id"]
    wrong_type = next(m for m in sample_messages() if m.type == "StartOrderRun").to_json()
    garbage = [
        (b"{this is not json", "undecodable"),
        (wrong_type, "unknown_type"),
        (json.dumps(missing).encode(), "invalid"),
        (b'{"type": "StepStarted", "pad": "' + b"x" * 20_000 + b'"}', "oversized"),
    ]
    producer = AIOKafkaProducer(
        **aiokafka_options(settings), acks="all", max_request_size=2_000_000
    )
    await producer.start()
    try:
        # Everything on one partition, poison first: the good ones must not be blocked.
        for value, _ in garbage:
            await producer.send_and_wait(topic, value, key=b"k", partition=0)
        for m in good:
            await producer.send_and_wait(topic, m.to_json(), key=b"k", partition=0)
    finally:
        await producer.stop()

    async with broker:
        await broker.start()
        records = await _read_all(settings, DEAD_LETTERS.full_name(settings.topic_prefix), 4)
        async with asyncio.timeout(20):
            while len(handled) < len(good):
                await asyncio.sleep(0.05)
        await guard.stop()

    assert handled == [m.message_id for m in good]
    letters = [decode_message(r.value) for r in records]
    assert all(isinstance(x, DeadLetter) for x in letters)
    by_offset = {x.source_offset: x for x in letters}
    assert sorted(by_offset) == [0, 1, 2, 3]
    assert [by_offset[i].error_kind for i in range(4)] == [k for _, k in garbage]
    assert "not JSON" in by_offset[0].reason
    assert "'StartOrderRun' is not carried by this topic" in by_offset[1].reason
    assert "worker_id: Field required" in by_offset[2].reason
    assert "limit 10000" in by_offset[3].reason
    for x in letters:
        assert (x.source_topic, x.source_partition, x.consumer) == (topic, 0, "sous-test")
    assert by_offset[3].payload_size > 20_000
    assert by_offset[0].payload == "{this is not json"
