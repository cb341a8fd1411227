"""Producers for the outbox relay: a dedicated idempotent aiokafka producer, or a broker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerIdMapping,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)
from faststream.kafka import KafkaBroker

from sous_common.kafka import aiokafka_options
from sous_common.logs import get_logger
from sous_common.outbox import Publisher
from sous_common.settings import KafkaSettings

log = get_logger(__name__)

PRODUCER_LOST: tuple[type[BaseException], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerIdMapping,
    ProducerFenced,
)
"""Errors after which an idempotent producer's sequence is broken for good (a broker that
came back without the producer's state): only a new producer sends again."""


class RelayProducer:
    """The relay's own producer: acks from all replicas, idempotent, batching in flight.

    The relay publishes most of what a service sends, so it talks to aiokafka directly
    rather than through a framework's per-message publish path.
    """

    def __init__(
        self, settings: KafkaSettings, new: Callable[[], AIOKafkaProducer] | None = None
    ) -> None:
        self._settings = settings
        self._new = new or self._idempotent
        self._producer = self._new()
        self._lost = False

    def _idempotent(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **aiokafka_options(self._settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=self._settings.linger_ms,
            max_request_size=self._settings.max_message_bytes + 65_536,
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
        """Start sending one record; the result completes on the broker's ack.

        After an ack failed with PRODUCER_LOST, the next send first replaces the producer;
        the relay sends the rows again (at least once; consumers drop repeats).
        """
        if self._lost:
            log.warning("relay producer replaced: its sequence was lost by the broker")
            old, self._producer, self._lost = self._producer, self._new(), False
            await old.stop()
            await self._producer.start()
        future: Awaitable[object] = await self._producer.send(
            topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()]
        )
        return self._watched(future)

    async def _watched(self, future: Awaitable[object]) -> object:
        try:
            return await future
        except PRODUCER_LOST:
            self._lost = True
            raise


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
