"""Wiring of the outbox relay to a FastStream broker."""

from __future__ import annotations

from collections.abc import Awaitable

from faststream.kafka import KafkaBroker

from sous_common.outbox import Publisher


def broker_publisher(broker: KafkaBroker) -> Publisher:
    """Return an outbox publisher that sends through the broker's idempotent producer."""

    async def publish(
        topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> Awaitable[object]:
        future: Awaitable[object] = await broker.publish(
            value, topic, key=key, headers=headers, no_confirm=True
        )
        return future

    return publish
