"""Catch-up of the registry changelog at start-up, before any command is handled.

The topic is compacted, so reading it from the beginning to its current end gives the
registry's whole present state; the consumer group then follows live changes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer

from sous_common.decoding import Refusal, decode_record
from sous_common.kafka import aiokafka_options
from sous_common.logs import get_logger
from sous_common.runtime import Runtime
from sous_contracts.registry import RegistryEntityChanged
from sous_contracts.topics import REGISTRY_CHANGELOG
from sous_scheduler.adapters import postgres as db
from sous_scheduler.domain.registry import spec_problem

log = get_logger(__name__)

REFUSED_BY_DATABASE = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
)
"""Errors one record causes however often it is tried (bad value, constraint, size)."""


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
                changes = [
                    (r, change)
                    for records in batch.values()
                    for r in records
                    if (change := _decoded(r, allowed, rt.kafka.max_message_bytes))
                ]
                applied += await _apply(rt, changes)
    finally:
        await consumer.stop()
    log.info("registry caught up", records=applied)
    return applied


def _decoded(record: Any, allowed: tuple[str, ...], max_bytes: int) -> RegistryEntityChanged | None:
    try:
        change = decode_record(record, allowed, max_bytes)
    except Refusal as refused:
        # Refused exactly as the live consumer refuses it, which dead-letters it; the
        # catch-up only must not apply it.
        log.warning(
            "changelog record refused",
            offset=record.offset,
            partition=record.partition,
            reason=refused.reason,
        )
        return None
    assert isinstance(change, RegistryEntityChanged)
    if (problem := spec_problem(change)) is not None:
        # The live consumer refuses it as well, and dead-letters it.
        log.warning(
            "changelog record refused",
            offset=record.offset,
            partition=record.partition,
            reason=problem,
        )
        return None
    return change


async def _apply(rt: Runtime, changes: list[tuple[Any, RegistryEntityChanged]]) -> int:
    """Apply a batch in one transaction; if the database refuses a record, one by one."""
    if not changes:
        return 0
    # In one order of entities (a stable sort keeps each entity's own records in order), so
    # replicas catching up at the same time lock rows in the same order and never deadlock.
    changes = sorted(changes, key=lambda rc: rc[1].entity_id)
    try:
        async with rt.pool.acquire() as conn, conn.transaction():
            for _, change in changes:
                await db.upsert_entity(conn, change)
        return len(changes)
    except REFUSED_BY_DATABASE:
        pass
    applied = 0
    async with rt.pool.acquire() as conn:
        for r, change in changes:
            try:
                async with conn.transaction():
                    await db.upsert_entity(conn, change)
                applied += 1
            except REFUSED_BY_DATABASE as exc:
                # It stays on the compacted topic for good: stopping here would stop every
                # start-up. The live consumer fails on it too and dead-letters it.
                log.warning(
                    "changelog record not storable",
                    offset=r.offset,
                    partition=r.partition,
                    entity_id=change.entity_id[:200],
                    error=f"{type(exc).__name__}: {exc}",
                )
    return applied
