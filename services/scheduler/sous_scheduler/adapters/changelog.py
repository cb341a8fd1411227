"""Catch-up of the registry changelog at start-up, before any command is handled.

The topic is compacted, so reading it from the beginning to its current end gives the
registry's whole present state; the consumer group then follows live changes.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer

from sous_common.decoding import Refusal, decode_record
from sous_common.kafka import aiokafka_options
from sous_common.logs import get_logger
from sous_common.runtime import Runtime
from sous_contracts.registry import RegistryEntityChanged
from sous_contracts.topics import REGISTRY_CHANGELOG
from sous_scheduler.adapters import postgres as db

log = get_logger(__name__)


async def catch_up(rt: Runtime, timeout_s: float = 60.0) -> int:
    """Apply every changelog record up to the topic's current end; return how many."""
    topic = rt.topic(REGISTRY_CHANGELOG)
    allowed = REGISTRY_CHANGELOG.message_types()
    # Subscribed without a group: aiokafka assigns every partition of the topic.
    consumer = AIOKafkaConsumer(
        topic,
        **aiokafka_options(rt.kafka),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    applied = 0
    try:
        async with asyncio.timeout(timeout_s):
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=100)
            tps = sorted(consumer.assignment(), key=lambda tp: tp.partition)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(*tps, timeout_ms=200)
                async with rt.pool.acquire() as conn, conn.transaction():
                    for records in batch.values():
                        for r in records:
                            try:
                                change = decode_record(r, allowed, rt.kafka.max_message_bytes)
                            except Refusal as refused:
                                # Refused exactly as the live consumer refuses it, which
                                # dead-letters it; the catch-up only must not apply it.
                                log.warning(
                                    "changelog record refused",
                                    offset=r.offset,
                                    partition=r.partition,
                                    reason=refused.reason,
                                )
                                continue
                            assert isinstance(change, RegistryEntityChanged)
                            await db.upsert_entity(conn, change)
                            applied += 1
    finally:
        await consumer.stop()
    log.info("registry caught up", records=applied)
    return applied
