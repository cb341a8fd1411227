"""Poison records on the compacted registry changelog never stop the scheduler.

A record that cannot be decoded or stored sits on the changelog for good (compaction keeps
the last record of its key), so every start-up catch-up meets it again. The scheduler must
still become ready, keep the valid records around it, dead-letter it with the reason (from
the first start only), and come back after a restart on the same schema and topics with
runs still working.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from sous_common.kafka import aiokafka_options
from sous_contracts import decode_message
from sous_contracts.common import RunStatus
from sous_contracts.deadletter import DeadLetter
from sous_contracts.registry import EntityKind
from sous_contracts.runs import OrderRunRejected
from sous_contracts.topics import DEAD_LETTERS, REGISTRY_CHANGELOG
from tests.conftest import TEST_PARTITIONS
from tests.scheduler.integration.conftest import KITCHENS, drop, recipe, run_scheduler
from tests.scheduler.integration.test_runs import finished, run_events, start
from tests.scheduler.standins import entity, send, standins

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

NOOP = {"run": {"kind": "noop"}}
BEFORE = recipe("a", "before", {"one": NOOP})
AFTER = recipe("a", "make", {"one": NOOP})
VALID = [KITCHENS[0], BEFORE, AFTER, KITCHENS[1]]


def _with_nan() -> bytes:
    data = json.loads(recipe("a", "poison", {"one": NOOP}).to_json())
    data["spec"]["threshold"] = float("nan")
    raw = json.dumps(data).encode()  # Python writes NaN, which no strict reader accepts
    assert b"NaN" in raw
    return raw


def _unstorable() -> tuple[bytes, bytes]:
    """A record every reader decodes, whose key PostgreSQL cannot index (over 8 kB)."""
    kitchen = entity(EntityKind.KITCHEN, "huge", {"kitchen": "huge"})
    kitchen = kitchen.model_copy(update={"entity_id": "kitchen:" + secrets.token_hex(5000)})
    return kitchen.kafka_key(), kitchen.to_json()


def _unreadable_spec() -> tuple[bytes, bytes]:
    """A well-formed record whose recipe spec no scheduler can plan a run from."""
    invalid = recipe("a", "invalid", {"one": {}})  # a step with nothing to run
    return invalid.kafka_key(), invalid.to_json()


# (key, value, the dead letter's error_kind, a fragment of its reason)
POISON = [
    (*_unreadable_spec(), "invalid", "recipe:a/invalid: invalid RecipeSpec: steps.one"),
    (b"recipe:a/poison", _with_nan(), "undecodable", "NaN is not JSON"),
    (b"recipe:a/garbage", b"this is not JSON {", "undecodable", "not JSON"),
    (*_unstorable(), "handler_error", "ProgramLimitExceededError"),
]


@pytest.fixture
async def kept_schema(servers, schema) -> AsyncIterator[str]:
    """A schema that outlives one scheduler (a restart follows), dropped after the test."""
    yield schema
    await drop(servers, schema)


async def produce(settings, records: list[tuple[bytes, bytes]]) -> list[int]:
    """Write raw records to partition 0 of the changelog, in order; return their offsets."""
    topic = REGISTRY_CHANGELOG.full_name(settings.topic_prefix)
    producer = AIOKafkaProducer(**aiokafka_options(settings), acks="all")
    await producer.start()
    try:
        return [
            (await producer.send_and_wait(topic, value, key=key, partition=0)).offset
            for key, value in records
        ]
    finally:
        await producer.stop()


def raw(entity) -> tuple[bytes, bytes]:
    return entity.kafka_key(), entity.to_json()


async def entity_ids(service) -> set[str]:
    return {r["entity_id"] for r in await service.rt.pool.fetch("SELECT entity_id FROM registry")}


async def handled_live(settings, service, name: str) -> None:
    """Barrier: a valid record written now, behind the poison, is applied by the live consumer.

    The start-up catch-up is over by then, so only the consumer group can apply it, and it
    reads partition 0 in order: every record before it has been handled or dead-lettered.
    """
    sentinel = recipe("a", name, {"one": NOOP})
    await produce(settings, [raw(sentinel)])
    async with asyncio.timeout(20):
        while sentinel.entity_id not in await entity_ids(service):
            await asyncio.sleep(0.05)


async def dead_letters(settings) -> list[DeadLetter]:
    """Every dead letter on the topic up to its end now."""
    topic = DEAD_LETTERS.full_name(settings.topic_prefix)
    consumer = AIOKafkaConsumer(
        **aiokafka_options(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    out: list[DeadLetter] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(TEST_PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        async with asyncio.timeout(20):
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                for records in (await consumer.getmany(*tps, timeout_ms=200)).values():
                    out.extend(decode_message(r.value) for r in records)  # type: ignore[misc]
    finally:
        await consumer.stop()
    return out


def letters_for(letters: list[DeadLetter], settings, offsets: list[int]) -> dict[int, list]:
    """The dead letters of each changelog offset (partition 0)."""
    topic = REGISTRY_CHANGELOG.full_name(settings.topic_prefix)
    mine = [x for x in letters if (x.source_topic, x.source_partition) == (topic, 0)]
    return {o: [x for x in mine if x.source_offset == o] for o in offsets}


async def test_poison_on_the_changelog_neither_stops_nor_loops_the_scheduler(
    kafka_settings, servers, kept_schema
) -> None:
    poison_records = [(key, value) for key, value, _, _ in POISON]
    offsets = await produce(
        kafka_settings,
        [raw(KITCHENS[0]), raw(BEFORE), *poison_records, raw(AFTER), raw(KITCHENS[1])],
    )
    poison = offsets[2 : 2 + len(POISON)]
    valid = {e.entity_id for e in VALID}

    async with run_scheduler(kafka_settings, servers, kept_schema, keep_schema=True) as service:
        # Ready means the start-up catch-up is over: it read past every poison record.
        assert await entity_ids(service) == valid
        await handled_live(kafka_settings, service, "first-barrier")
        first = letters_for(await dead_letters(kafka_settings), kafka_settings, poison)
        for offset, (_, value, kind, fragment) in zip(poison, POISON, strict=True):
            # Usually one each; a rebalance while the group forms may repeat one (at least once).
            assert first[offset], f"no dead letter for offset {offset}"
            for letter in first[offset]:
                assert (letter.error_kind, letter.consumer) == (
                    kind,
                    f"{kafka_settings.topic_prefix}sous-scheduler",
                )
                assert fragment in letter.reason, letter.reason
                assert letter.payload_size == len(value)

        # A command naming an unknown recipe makes the service re-read the changelog
        # (`_refresh`) over the same poison; it must finish and refuse the command.
        unknown = start("a", "missing")
        await send(kafka_settings, [unknown])
        events = await run_events(
            kafka_settings,
            lambda s: any(
                isinstance(e, OrderRunRejected) and e.order_run_id == unknown.order_run_id
                for e in s
            ),
        )
        (rejected,) = [e for e in events if isinstance(e, OrderRunRejected)]
        assert "missing" in rejected.reason

    async with run_scheduler(kafka_settings, servers, kept_schema, keep_schema=True) as service:
        assert await entity_ids(service) == valid | {"recipe:a/first-barrier"}
        await handled_live(kafka_settings, service, "second-barrier")
        again = letters_for(await dead_letters(kafka_settings), kafka_settings, poison)
        assert again == first, "dead-lettered by the first start only, not once per start"

        async with standins(kafka_settings):
            cmd = start("a", "make")
            await send(kafka_settings, [cmd])
            events = await run_events(
                kafka_settings,
                lambda s: any(e.order_run_id == cmd.order_run_id for e in finished(s)),
            )
        (done,) = [e for e in finished(events) if e.order_run_id == cmd.order_run_id]
        assert done.status is RunStatus.SUCCEEDED
