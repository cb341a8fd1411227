"""Every contract message crosses the real broker with plain aiokafka and reads back valid."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sous_common.kafka import aiokafka_options
from sous_contracts import decode_message
from sous_contracts.testing import sample_messages
from sous_contracts.topics import topic_for

pytestmark = pytest.mark.kafka


async def test_every_message_round_trips_through_kafka(kafka_settings) -> None:
    options = aiokafka_options(kafka_settings)
    samples = sample_messages()
    producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for m in samples:
            await producer.send_and_wait(
                topic_for(m).full_name(kafka_settings.topic_prefix),
                m.to_json(),
                key=m.kafka_key(),
            )
    finally:
        await producer.stop()

    topics = {topic_for(m).full_name(kafka_settings.topic_prefix) for m in samples}
    consumer = AIOKafkaConsumer(
        *topics, **options, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    received = []
    try:
        async with asyncio.timeout(30):
            while len(received) < len(samples):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for r in records:
                        topic = next(
                            topic_for(m)
                            for m in samples
                            if topic_for(m).full_name(kafka_settings.topic_prefix) == r.topic
                        )
                        message = decode_message(r.value, topic.message_types())
                        assert r.key == message.kafka_key()
                        received.append(message)
    finally:
        await consumer.stop()
    assert sorted(received, key=lambda m: m.type) == sorted(samples, key=lambda m: m.type)
