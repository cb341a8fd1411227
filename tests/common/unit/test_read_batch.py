"""Batch subscribers take a record as soon as it arrives, even after a wait found nothing."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from faststream.kafka.subscriber.usecase import BatchSubscriber

import sous_common.subscribing  # noqa: F401  (installs the read on every batch subscriber)


class Consumer:
    """Answers `getmany` with what it is given, recording how it was asked."""

    def __init__(self, found: dict[str, list[str]]) -> None:
        self.found = found
        self.asked: list[dict[str, Any]] = []

    async def getmany(self, **kwargs: Any) -> dict[str, list[str]]:
        self.asked.append(kwargs)
        return self.found


class Subscriber:
    batch_timeout_ms = 500
    max_records = 7


async def no_sleep(delay: float) -> None:
    raise AssertionError(f"the read slept {delay} s after a wait that found nothing")


async def test_an_empty_wait_is_followed_by_the_next_wait_not_by_a_sleep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(anyio, "sleep", no_sleep)
    consumer = Consumer({})
    assert await BatchSubscriber.get_msg(Subscriber(), consumer) == ()  # type: ignore[arg-type]
    assert consumer.asked == [{"timeout_ms": 500, "max_records": 7}]


async def test_what_arrived_is_returned_in_partition_order() -> None:
    consumer = Consumer({"p0": ["a", "b"], "p1": ["c"]})
    found = await BatchSubscriber.get_msg(Subscriber(), consumer)  # type: ignore[arg-type]
    assert found == ("a", "b", "c")
