"""The shared instruments: bounded labels, batch time shared, lag read at scrape time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from sous_common import metrics
from sous_contracts.steps import StepStarted
from sous_contracts.testing import sample_messages


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class FakeConsumer:
    """What the lag reader uses of an aiokafka consumer."""

    def __init__(self, high: dict[TopicPartition, int | None], fetched: dict) -> None:
        self.high, self.fetched = high, fetched

    def assignment(self) -> set[TopicPartition]:
        return set(self.high)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.high[tp]

    async def position(self, tp: TopicPartition) -> int:
        return self.fetched[tp]


async def test_lag_is_high_watermark_minus_handled_and_moved_partitions_go() -> None:
    a, b, c = (TopicPartition("t.lag", p) for p in range(3))
    consumer = FakeConsumer({a: 10, b: 7, c: None}, {b: 5})
    await metrics.read_lag("g-lag", [consumer], {a: 4})
    assert value("sous_consumer_lag", group="g-lag", topic="t.lag", partition="0") == 6
    assert value("sous_consumer_lag", group="g-lag", topic="t.lag", partition="1") == 2
    unknown = REGISTRY.get_sample_value(
        "sous_consumer_lag", {"group": "g-lag", "topic": "t.lag", "partition": "2"}
    )
    assert unknown is None  # no fetch answered yet: not reported as 0

    await metrics.read_lag("g-lag", [FakeConsumer({b: 7}, {b: 7})], {})
    gone = {"group": "g-lag", "topic": "t.lag", "partition": "0"}
    assert REGISTRY.get_sample_value("sous_consumer_lag", gone) is None
    assert value("sous_consumer_lag", group="g-lag", topic="t.lag", partition="1") == 0


def test_a_batch_shares_its_time_among_its_messages_by_type() -> None:
    started = next(m for m in sample_messages() if isinstance(m, StepStarted))
    before = value("sous_handle_seconds_sum", group="g-batch", type="StepStarted")
    metrics.handled("g-batch", [started, started, started, started], 0.4)
    assert value("sous_handle_seconds_count", group="g-batch", type="StepStarted") == 4
    after = value("sous_handle_seconds_sum", group="g-batch", type="StepStarted")
    assert abs(after - before - 0.4) < 1e-9


def test_relay_latency_is_observed_per_row_from_its_commit() -> None:
    now = datetime.now(UTC)
    metrics.relayed("s_relay", [now - timedelta(seconds=2), now - timedelta(milliseconds=1)])
    assert value("sous_relay_published_total", schema="s_relay") == 2
    assert value("sous_relay_latency_seconds_count", schema="s_relay") == 2
    assert value("sous_relay_latency_seconds_bucket", schema="s_relay", le="0.01") == 1


def test_only_messages_queued_inside_the_watched_block_are_collected() -> None:
    started = next(m for m in sample_messages() if isinstance(m, StepStarted))
    metrics.note_emitted([started])  # outside: nobody watches, nothing kept
    with metrics.emitted() as seen:
        metrics.note_emitted([started])
    metrics.note_emitted([started])
    assert seen == [started]
