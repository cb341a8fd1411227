"""The Prometheus instruments every service shares, and the values read when scraped.

Counters and histograms move where things happen (the consumer guard, the inbox, the outbox
relay); gauges that describe a backlog (consumer lag, outbox rows) are read at scrape time
only, so an idle service does no work for them. Labels are bounded: consumer group, topic,
partition, message type, schema, reason category. Never a message id, key or run id.
The table of every instrument is in `deploy/README.md`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from prometheus_client import Counter, Gauge, Histogram

from sous_contracts.envelope import Envelope

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
"""Seconds; the low end resolves the millisecond budgets of DESIGN §6."""

CONSUMER_LAG = Gauge(
    "sous_consumer_lag",
    "Records on the partition not handled yet by this replica (read at scrape time).",
    ["group", "topic", "partition"],
)
HANDLE_SECONDS = Histogram(
    "sous_handle_seconds",
    "Time a handler took for one message; a batch's time is shared among its messages.",
    ["group", "type"],
    buckets=LATENCY_BUCKETS,
)
DUPLICATES = Counter(
    "sous_inbox_duplicates_total",
    "Messages the inbox recognised as handled before and skipped.",
    ["consumer"],
)
DEAD_LETTERS = Counter(
    "sous_dead_letters_total",
    "Messages sent to the dead-letter topic, by reason category (the dead letter's kind).",
    ["consumer", "reason"],
)
OUTBOX_BACKLOG = Gauge(
    "sous_outbox_backlog", "Rows in the outbox not published yet (read at scrape time).", ["schema"]
)
OUTBOX_AGE = Gauge(
    "sous_outbox_oldest_age_seconds",
    "Age of the oldest outbox row not published yet; 0 when empty (read at scrape time).",
    ["schema"],
)
RELAY_SECONDS = Histogram(
    "sous_relay_latency_seconds",
    "From an outbox row's commit to the broker's acknowledgement of it.",
    ["schema"],
    buckets=LATENCY_BUCKETS,
)
RELAYED = Counter(
    "sous_relay_published_total", "Outbox rows the relay published (or moved aside).", ["schema"]
)
READY = Gauge("sous_ready", "1 when the service answers /readyz with 200.", ["service"])


def dead_lettered(consumer: str, kind: str, count: int = 1) -> None:
    """Count dead letters."""
    DEAD_LETTERS.labels(consumer, kind).inc(count)


def duplicates(consumer: str, count: int = 1) -> None:
    """Count messages the inbox skipped."""
    if count:
        DUPLICATES.labels(consumer).inc(count)


def handled(group: str, messages: Iterable[Envelope], seconds: float) -> None:
    """Observe a handler's time for its messages (a batch shares it evenly)."""
    batch = list(messages)
    share = seconds / max(len(batch), 1)
    for m in batch:
        HANDLE_SECONDS.labels(group, m.type).observe(share)


def relayed(schema: str, created: Iterable[datetime]) -> None:
    """Observe the relay latency of rows the broker acknowledged just now."""
    now = datetime.now(UTC)
    histogram = RELAY_SECONDS.labels(schema)
    n = 0
    for at in created:
        histogram.observe(max((now - at).total_seconds(), 0.0))
        n += 1
    RELAYED.labels(schema).inc(n)


async def read_lag(group: str, consumers: Iterable[Any], positions: dict[Any, int]) -> None:
    """Set the lag gauge of every partition the consumers hold now.

    Lag is the partition's high watermark (from the last fetch) minus the offset after the
    last record this replica handled, or minus the fetch position when it handled none yet.
    Partitions that moved to another replica are dropped from the gauge.
    """
    values: dict[tuple[str, int], int] = {}
    for consumer in consumers:
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue  # no fetch answered yet: unknown, not zero
            done = positions.get(TopicPartition(tp.topic, tp.partition))
            if done is None:
                with contextlib.suppress(Exception):
                    done = await asyncio.wait_for(consumer.position(tp), 1.0)
            if done is not None:
                values[(tp.topic, tp.partition)] = max(high - done, 0)
    for labels in list(_lag_labels.get(group, set()) - set(values)):
        with contextlib.suppress(KeyError):
            CONSUMER_LAG.remove(group, labels[0], str(labels[1]))
    for (topic, partition), lag in values.items():
        CONSUMER_LAG.labels(group, topic, str(partition)).set(lag)
    _lag_labels[group] = set(values)


_lag_labels: dict[str, set[tuple[str, int]]] = {}


async def read_outbox(conn: Any, schema: str) -> None:
    """Set the outbox gauges from one cheap query."""
    row = await conn.fetchrow(
        "SELECT count(*) AS n, extract(epoch FROM now() - min(created_at)) AS age FROM outbox"
    )
    OUTBOX_BACKLOG.labels(schema).set(row["n"])
    OUTBOX_AGE.labels(schema).set(float(row["age"] or 0.0))


_emitted: contextvars.ContextVar[list[Envelope] | None] = contextvars.ContextVar(
    "sous_emitted", default=None
)


def note_emitted(messages: list[Envelope]) -> None:
    """Remember messages queued in the outbox by the transaction `emitted()` watches."""
    sink = _emitted.get()
    if sink is not None:
        sink.extend(messages)


@contextlib.contextmanager
def emitted() -> Iterator[list[Envelope]]:
    """Collect what is queued in the outbox inside the block (for counting after commit)."""
    sink: list[Envelope] = []
    token = _emitted.set(sink)
    try:
        yield sink
    finally:
        _emitted.reset(token)
