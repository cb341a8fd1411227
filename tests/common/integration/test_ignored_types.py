"""Types a consumer ignores pass by undecoded; malformed messages it takes are still refused.

Every record goes to one partition, in the order written; a good message queued last is the
barrier: once it is handled, every record before it was handled, passed by or dead-lettered.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

import pytest
from pydantic import Field

from sous_common.kafka import make_broker
from sous_common.subscribing import consumer_options, guard_broker
from sous_contracts.steps import StepFinished
from sous_contracts.testing import sample_messages
from sous_contracts.tests import TestResult, TestSuiteFinished
from sous_contracts.topics import TEST_RESULTS
from tests.records import dead_letters, produce

pytestmark = pytest.mark.kafka

TestEvent = Annotated[TestResult | TestSuiteFinished, Field(discriminator="type")]


def _fresh(kind: type[Any]) -> Any:
    sample = next(m for m in sample_messages() if isinstance(m, kind))
    return sample.model_copy(update={"message_id": uuid.uuid4()})


async def test_an_ignored_type_is_not_decoded_but_a_bad_handled_one_is_dead_lettered(
    kafka_settings,
) -> None:
    topic = TEST_RESULTS.full_name(kafka_settings.topic_prefix)
    suite, barrier, headless = (_fresh(TestSuiteFinished) for _ in range(3))
    result = _fresh(TestResult)
    handled: list[uuid.UUID] = []
    broker = make_broker(kafka_settings, client_id="test")
    guard = guard_broker(broker, kafka_settings, consumer="sous-test")
    guard.ignore(topic, TestResult)
    with pytest.raises(ValueError, match="does not carry"):
        guard.ignore(topic, StepFinished)

    @broker.subscriber(topic, batch=True, max_records=100, **consumer_options("sous-test"))
    async def on_batch(events: list[TestEvent]) -> None:
        handled.extend(e.message_id for e in events)

    suite_type = [("type", b"TestSuiteFinished")]
    result_type = [("type", b"TestResult")]
    await produce(
        kafka_settings,
        topic,
        [
            (b"{garbage that no decoder would pass", result_type),  # 0: ignored, not decoded
            (result.to_json(), result_type),  # 1: ignored, never reaches the handler
            (suite.to_json(), suite_type),  # 2: handled
            (b'{"type": "TestSuiteFinished", "schema_version": 2}', suite_type),  # 3: refused
            (result.to_json(), []),  # 4: no header: decoded, handed over, as before
            (b"[1, 2", []),  # 5: no header: refused
            (headless.to_json(), []),  # 6: handled
            (barrier.to_json(), suite_type),  # 7: handled, the barrier
        ],
    )
    async with broker:
        await broker.start()
        async with asyncio.timeout(30):
            while barrier.message_id not in handled:
                await asyncio.sleep(0.02)
        letters = await dead_letters(kafka_settings, 2)
        await guard.stop()

    assert handled == [suite.message_id, result.message_id, headless.message_id, barrier.message_id]
    by_offset = {x.source_offset: x for x in letters}
    assert sorted(by_offset) == [3, 5]  # the garbage at 0 was passed by, never judged
    assert by_offset[3].error_kind == "invalid"
    assert "message_id" in by_offset[3].reason
    assert by_offset[5].error_kind == "undecodable"
