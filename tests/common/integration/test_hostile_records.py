"""Hostile records from a plain Kafka client: each one is dead-lettered with its reason.

Nothing reaches a handler but the good record queued behind them all on the same partition,
which is the barrier: once it is handled, every record before it has been refused.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Annotated, Any

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


def _good() -> dict[str, Any]:
    started = next(m for m in sample_messages() if isinstance(m, StepStarted))
    data: dict[str, Any] = json.loads(
        started.model_copy(update={"message_id": uuid.uuid4()}).to_json()
    )
    return data


def _with(**changes: Any) -> bytes:
    data = _good()
    data.update(changes)
    return json.dumps(data).encode()


def _without(name: str) -> bytes:
    data = _good()
    del data[name]
    return json.dumps(data).encode()


def _raw(text: str) -> bytes:
    """A good message with `text` spliced in as the raw JSON of an extra field."""
    body = json.dumps(_good())
    return (body[:-1] + ', "extra": ' + text + "}").encode()


GOOD = json.dumps(_good()).encode()

# (value, headers, error_kind, a fragment the reason must contain)
HOSTILE: list[tuple[bytes | None, list[tuple[str, bytes | None]], str, str]] = [
    (b"\xff\xfe{}", [], "undecodable", "not UTF-8"),
    (b"[1, 2]", [], "undecodable", "expected a JSON object"),
    (_raw("NaN"), [], "undecodable", "NaN is not JSON"),
    (_raw("-Infinity"), [], "undecodable", "-Infinity is not JSON"),
    (_raw("1" * 400), [], "undecodable", "longer than 20 digits"),
    (_raw("[" * 5000 + "]" * 5000), [], "undecodable", "nested deeper than 32"),
    (_raw("[" * 40 + "]" * 40), [], "undecodable", "nested deeper than 32"),
    (_raw('"a\\u0000b"'), [], "undecodable", "extra: text contains \\u0000"),
    (_raw('"\\ud800"'), [], "undecodable", "extra: text contains an unpaired surrogate"),
    (_raw('{"k\\u0000": 1}'), [], "undecodable", "text contains \\u0000"),
    (_without("message_id"), [], "invalid", "missing required field(s) message_id"),
    (_without("occurred_at"), [], "invalid", "missing required field(s) occurred_at"),
    (_with(message_id=None), [], "invalid", "missing required field(s) message_id"),
    (_without("schema_version"), [], "invalid", "missing required field(s) schema_version"),
    (_with(schema_version=99), [], "unsupported_version", "schema_version 99"),
    (_with(schema_version="2"), [], "unsupported_version", "schema_version '2'"),
    (_with(message_id="not-a-uuid"), [], "invalid", "message_id"),
    (GOOD, [("type", None)], "undecodable", "header 'type' has no value"),
    (GOOD, [("type", b"\xff\x00")], "undecodable", "header 'type' is not UTF-8"),
    (GOOD, [(f"h{i}", b"v") for i in range(40)], "undecodable", "40 headers"),
    (None, [], "undecodable", "no value"),
]


async def _read(settings: Any, topic: str, n: int, timeout: float = 30) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        **aiokafka_options(settings),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            while len(out) < n:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    out.extend(records)
    finally:
        await consumer.stop()
    return out


async def test_hostile_records_are_dead_lettered_with_their_reason(kafka_settings) -> None:
    topic = STEP_EVENTS.full_name(kafka_settings.topic_prefix)
    handled: list[uuid.UUID] = []
    broker = make_broker(kafka_settings, client_id="test")
    guard = guard_broker(broker, kafka_settings, consumer="sous-test")

    @broker.subscriber(topic, **consumer_options("sous-test"))
    async def on_step_event(event: StepEvent) -> None:
        handled.append(event.message_id)

    sentinel = _good()
    producer = AIOKafkaProducer(**aiokafka_options(kafka_settings), acks="all")
    await producer.start()
    try:
        for value, headers, _, _ in HOSTILE:
            await producer.send_and_wait(topic, value, key=b"k", partition=0, headers=headers)
        await producer.send_and_wait(topic, json.dumps(sentinel).encode(), key=b"k", partition=0)
    finally:
        await producer.stop()

    async with broker:
        await broker.start()
        async with asyncio.timeout(30):
            while not handled:
                await asyncio.sleep(0.05)
        records = await _read(
            kafka_settings, DEAD_LETTERS.full_name(kafka_settings.topic_prefix), len(HOSTILE)
        )
        await guard.stop()

    assert [str(m) for m in handled] == [sentinel["message_id"]], "only the good record"
    letters = [decode_message(r.value) for r in records]
    assert all(isinstance(x, DeadLetter) for x in letters), "dead letters are readable"
    by_offset = {x.source_offset: x for x in letters}
    assert sorted(by_offset) == list(range(len(HOSTILE)))
    for offset, (_, _, kind, fragment) in enumerate(HOSTILE):
        letter = by_offset[offset]
        assert (letter.error_kind, offset) == (kind, offset), letter.reason
        assert fragment in letter.reason, (offset, letter.reason)
