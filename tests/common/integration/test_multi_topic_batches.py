"""One batch subscriber over two topics: the guard judges each record by its own topic.

A service reads several topics with one consumer (one fetch loop, one group member). Each
topic's records go to its partition 0, in the order written; a good message queued last on
each topic is its barrier: once both are handled, every record before them was handled,
passed by or dead-lettered.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import Field

from sous_common.kafka import aiokafka_options, make_broker
from sous_common.subscribing import consumer_options, guard_broker
from sous_contracts.steps import StepStarted
from sous_contracts.testing import sample_messages
from sous_contracts.tests import TestResult, TestSuiteFinished
from sous_contracts.topics import STEP_EVENTS, TEST_RESULTS
from tests.records import dead_letters, produce

pytestmark = pytest.mark.kafka

Event = Annotated[StepStarted | TestResult | TestSuiteFinished, Field(discriminator="type")]


def _fresh(kind: type[Any]) -> Any:
    sample = next(m for m in sample_messages() if isinstance(m, kind))
    return sample.model_copy(update={"message_id": uuid.uuid4()})


async def _committed(settings: Any, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items()}


async def test_each_record_is_judged_and_committed_on_its_own_topic(kafka_settings) -> None:
    steps = STEP_EVENTS.full_name(kafka_settings.topic_prefix)
    tests = TEST_RESULTS.full_name(kafka_settings.topic_prefix)
    group = f"sous-test-{uuid.uuid4().hex[:8]}"
    started, step_barrier = _fresh(StepStarted), _fresh(StepStarted)
    suite, suite_barrier = _fresh(TestSuiteFinished), _fresh(TestSuiteFinished)
    result = _fresh(TestResult)
    handled: list[uuid.UUID] = []
    broker = make_broker(kafka_settings, client_id="test")
    guard = guard_broker(broker, kafka_settings, consumer=group)
    guard.ignore(tests, TestResult)

    @broker.subscriber(steps, tests, batch=True, max_records=100, **consumer_options(group))
    async def on_batch(events: list[Event]) -> None:
        handled.extend(e.message_id for e in events)

    result_type = [("type", b"TestResult")]
    await produce(
        kafka_settings,
        steps,
        [
            (started.to_json(), []),  # 0: handled
            (b"{not json", []),  # 1: refused
            (result.to_json(), result_type),  # 2: ignored on the test topic only: refused here
            (step_barrier.to_json(), []),  # 3: handled, the barrier
        ],
    )
    await produce(
        kafka_settings,
        tests,
        [
            (b"{garbage that no decoder would pass", result_type),  # 0: ignored, not decoded
            (suite.to_json(), []),  # 1: handled
            (b'{"type": "TestSuiteFinished", "schema_version": 2}', []),  # 2: refused
            (suite_barrier.to_json(), []),  # 3: handled, the barrier
        ],
    )
    async with broker:
        await broker.start()
        async with asyncio.timeout(30):
            while not {step_barrier.message_id, suite_barrier.message_id} <= set(handled):
                await asyncio.sleep(0.02)
        letters = await dead_letters(kafka_settings, 3)
        await guard.stop()
        committed = await _committed(kafka_settings, group)

    def order(topic_messages: list[Any]) -> list[uuid.UUID]:
        ids = {m.message_id for m in topic_messages}
        return [i for i in handled if i in ids]

    assert sorted(handled) == sorted(
        m.message_id for m in [started, step_barrier, suite, suite_barrier]
    )
    assert order([started, step_barrier]) == [started.message_id, step_barrier.message_id]
    assert order([suite, suite_barrier]) == [suite.message_id, suite_barrier.message_id]
    by_place = {(x.source_topic, x.source_offset): x for x in letters}
    assert sorted(by_place) == [(steps, 1), (steps, 2), (tests, 2)]
    assert by_place[steps, 1].error_kind == "undecodable"
    assert "TestResult" in by_place[steps, 2].reason  # not a type the step topic carries
    assert by_place[tests, 2].error_kind == "invalid"
    assert all(x.consumer == group for x in letters)
    # Every record of both topics is done with, and so committed.
    assert committed[TopicPartition(steps, 0)] == 4
    assert committed[TopicPartition(tests, 0)] == 4
