"""Safe subscriber options and the guard every service broker gets (DESIGN §5.3, §5.8)."""

from __future__ import annotations

from itertools import chain
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import BatchSubscriber

from sous_common.consuming import ConsumerGuard
from sous_common.settings import KafkaSettings


def guard_broker(broker: KafkaBroker, settings: KafkaSettings, *, consumer: str) -> ConsumerGuard:
    """Put the consumer guard in front of every subscriber of the broker; return it."""
    guard = ConsumerGuard(
        broker,
        consumer=consumer,
        prefix=settings.topic_prefix,
        max_message_bytes=settings.max_message_bytes,
    )
    broker.add_middleware(guard)
    return guard


def consumer_options(
    group_id: str, *, heartbeat_interval_ms: int = 200, fetch_max_wait_ms: int = 100
) -> dict[str, Any]:
    """Options for `broker.subscriber`: earliest offset, commits left to the guard.

    The guard commits the offsets of handled messages only; FastStream's own per-message
    acknowledgement is off. See `KafkaSettings.heartbeat_interval_ms` for the heartbeats.
    """
    return {
        "group_id": group_id,
        "auto_offset_reset": "earliest",
        "ack_policy": AckPolicy.MANUAL,
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": heartbeat_interval_ms,
        "max_poll_interval_ms": 300_000,
        "fetch_max_wait_ms": fetch_max_wait_ms,
    }


async def read_batch(
    subscriber: BatchSubscriber, consumer: AIOKafkaConsumer
) -> tuple[ConsumerRecord[Any, Any], ...]:
    """A batch subscriber's read: what has arrived, or the first record as soon as it does.

    FastStream's own read sleeps as long as it waited whenever a wait found nothing, so a
    record arriving then waited for the sleep to end: on every hop of a quiet mesh, up to
    the wait again (DESIGN §6 budgets those hops). Waiting is left to aiokafka, which wakes
    at the first record; after `batch_timeout_ms` with none the loop simply looks again.
    """
    found = await consumer.getmany(
        timeout_ms=subscriber.batch_timeout_ms, max_records=subscriber.max_records
    )
    return tuple(chain(*found.values()))


BatchSubscriber.get_msg = read_batch  # type: ignore[method-assign, assignment]
"""Every batch subscriber of every service reads this way (see `read_batch`)."""
