"""Producers for the outbox relay: a dedicated idempotent aiokafka producer, or a broker."""

from __future__ import annotations

from collections.abc import Awaitable

from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker

from sous_common.kafka import aiokafka_options
from sous_common.outbox import Publisher
from sous_common.settings import KafkaSettings


class RelayProducer:
    """The relay's own producer: acks from all replicas, idempotent, batching in flight.

    The relay publishes most of what a service sends, so it talks to aiokafka directly
    rather than through a framework's per-message publish path.
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self._producer = AIOKafkaProducer(
            **aiokafka_options(settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=settings.linger_ms,
            max_request_size=settings.max_message_bytes + 65_536,
        )

    async def start(self) -> None:
        """Connect."""
        await self._producer.start()

    async def stop(self) -> None:
        """Flush and disconnect."""
        await self._producer.stop()

    async def partitions(self, topic: str) -> set[int]:
        """Return the partitions of a topic (from the cluster's metadata)."""
        found: set[int] = await self._producer.partitions_for(topic)
        return found

    async def __call__(
        self, topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> Awaitable[object]:
        """Start sending one record; the result completes on the broker's ack."""
        future: Awaitable[object] = await self._producer.send(
            topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()]
        )
        return future


def broker_publisher(broker: KafkaBroker) -> Publisher:
    """Return an outbox publisher that sends through a FastStream broker's producer."""

    async def publish(
        topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> Awaitable[object]:
        future: Awaitable[object] = await broker.publish(
            value, topic, key=key, headers=headers, no_confirm=True
        )
        return future

    return publish
