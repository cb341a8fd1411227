"""Raw records for guard tests: written to one partition in order, dead letters read back."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sous_common.kafka import aiokafka_options
from sous_contracts import decode_message
from sous_contracts.deadletter import DeadLetter
from sous_contracts.topics import DEAD_LETTERS


async def produce(settings: Any, topic: str, records: list[tuple[bytes, list[Any]]]) -> None:
    """Write (value, headers) records to partition 0 of `topic`, in order."""
    producer = AIOKafkaProducer(**aiokafka_options(settings), acks="all")
    await producer.start()
    try:
        batch = [
            await producer.send(topic, value, key=b"k", partition=0, headers=headers)
            for value, headers in records
        ]
        await asyncio.gather(*batch)
    finally:
        await producer.stop()


async def dead_letters(settings: Any, n: int) -> list[DeadLetter]:
    """Read the first `n` dead letters of the test's topics (30 s deadline)."""
    consumer = AIOKafkaConsumer(
        DEAD_LETTERS.full_name(settings.topic_prefix),
        **aiokafka_options(settings),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[Any] = []
    try:
        async with asyncio.timeout(30):
            while len(out) < n:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    out.extend(decode_message(r.value) for r in records)
    finally:
        await consumer.stop()
    return out
