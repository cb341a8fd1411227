"""A batch subscriber behind the guard: bad records and a failing message never cost the rest.

Every record goes to one partition, in the order written; a good message queued last is the
barrier: once it is handled, every record before it was handled or dead-lettered.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

import pytest
from pydantic import Field

from sous_common.kafka import make_broker
from sous_common.subscribing import consumer_options, guard_broker
from sous_common.trust import Principal
from sous_contracts.runs import DomainRunCompleted
from sous_contracts.steps import StepFinished, StepHeartbeat, StepStarted
from sous_contracts.testing import sample_messages
from sous_contracts.topics import DOMAIN_EVENTS, STEP_EVENTS
from tests.records import dead_letters, produce
from tests.signing import SCHEDULER, signed_headers

pytestmark = pytest.mark.kafka

StepEvent = Annotated[StepStarted | StepHeartbeat | StepFinished, Field(discriminator="type")]


def _started() -> StepStarted:
    sample = next(m for m in sample_messages() if isinstance(m, StepStarted))
    return sample.model_copy(update={"message_id": uuid.uuid4()})


async def _until(condition: Any, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_a_failing_message_in_a_batch_is_dead_lettered_alone(kafka_settings) -> None:
    topic = STEP_EVENTS.full_name(kafka_settings.topic_prefix)
    good = [_started() for _ in range(6)]
    poison = _started()
    barrier = _started()
    handled: list[uuid.UUID] = []
    calls: list[int] = []
    broker = make_broker(kafka_settings, client_id="test")
    guard = guard_broker(broker, kafka_settings, consumer="sous-test")
    guard.max_attempts = 2

    @broker.subscriber(topic, batch=True, max_records=100, **consumer_options("sous-test"))
    async def on_batch(events: list[StepEvent]) -> None:
        calls.append(len(events))
        if any(e.message_id == poison.message_id for e in events):
            raise ValueError("this one cannot be handled")
        handled.extend(e.message_id for e in events)

    await produce(
        kafka_settings,
        topic,
        [(m.to_json(), []) for m in good[:3]]
        + [(b"{not json", []), (good[0].to_json(), [("type", b"\xff")])]
        + [(poison.to_json(), [])]
        + [(m.to_json(), []) for m in good[3:]]
        + [(barrier.to_json(), [])],
    )
    async with broker:
        await broker.start()
        await _until(lambda: barrier.message_id in handled)
        letters = await dead_letters(kafka_settings, 3)
        await guard.stop()

    assert handled == [m.message_id for m in [*good, barrier]]  # each once, in order
    assert max(calls) > 1  # they came as batches
    by_offset = {x.source_offset: x for x in letters}
    assert sorted(by_offset) == [3, 4, 5]
    assert by_offset[3].error_kind == "undecodable"
    assert "not UTF-8" in by_offset[4].reason
    assert by_offset[5].error_kind == "handler_error"
    assert "this one cannot be handled" in by_offset[5].reason


async def test_a_transient_failure_redelivers_the_batch(kafka_settings) -> None:
    topic = STEP_EVENTS.full_name(kafka_settings.topic_prefix)
    messages = [_started() for _ in range(20)]
    handled: list[uuid.UUID] = []
    failures = [OSError("database away")]
    broker = make_broker(kafka_settings, client_id="test")
    guard = guard_broker(broker, kafka_settings, consumer="sous-test")

    @broker.subscriber(topic, batch=True, max_records=100, **consumer_options("sous-test"))
    async def on_batch(events: list[StepEvent]) -> None:
        if failures and len(events) > 1:
            raise failures.pop()
        handled.extend(e.message_id for e in events)

    await produce(kafka_settings, topic, [(m.to_json(), []) for m in messages])
    async with broker:
        await broker.start()
        await _until(lambda: messages[-1].message_id in handled)
        await guard.stop()

    assert not failures  # a batch failed once
    assert handled == [m.message_id for m in messages]  # then all came again, nothing lost


class _FlakyTrust:
    """Answers as the scheduler's grant would, after failing like a database that is away."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    async def principal(self, name: str) -> Principal | None:
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError(111, "database away")
        return Principal(name, {"*": ["admin"]}, (SCHEDULER.public_key,))

    async def domain_known(self, domain: str) -> bool:
        return True

    async def run_domain(self, order_run_id: Any) -> str | None:
        return None

    async def refresh(self, since: Any) -> bool:
        return False


def _completed() -> DomainRunCompleted:
    sample = next(m for m in sample_messages() if isinstance(m, DomainRunCompleted))
    return sample.model_copy(update={"message_id": uuid.uuid4()})


@pytest.mark.parametrize("batch", [False, True], ids=["one by one", "batches"])
async def test_a_signed_message_judged_while_the_database_is_away_comes_again(
    kafka_settings, batch: bool
) -> None:
    """Judging a signature reads the database; when it is away the record is not skipped."""
    topic = DOMAIN_EVENTS.full_name(kafka_settings.topic_prefix)
    messages = [_completed() for _ in range(8)]
    handled: list[uuid.UUID] = []
    broker = make_broker(kafka_settings, client_id="test")
    guard = guard_broker(broker, kafka_settings, consumer="sous-test")
    guard.trust = _FlakyTrust(failures=3)
    options = {"batch": True, "max_records": 100} if batch else {}

    @broker.subscriber(topic, **options, **consumer_options("sous-test"))
    async def on_events(events: Any) -> None:
        handled.extend(e.message_id for e in (events if batch else [events]))

    await produce(
        kafka_settings,
        topic,
        [
            (m.to_json(), [*signed_headers(m.to_json()), ("type", m.type.encode())])
            for m in messages
        ],
    )
    async with broker:
        await broker.start()
        await _until(lambda: messages[-1].message_id in handled)
        await guard.stop()

    assert guard.trust.failures == 0  # the database was away for a while
    assert handled == [m.message_id for m in messages]  # then each came once, in order
