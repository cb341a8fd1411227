"""Talking to the mesh over Kafka as any system can: send a signed command, follow topics."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sous.keys_cmd import cli_signer
from sous_common.kafka import aiokafka_options
from sous_common.outbox import record_headers
from sous_common.settings import KafkaSettings
from sous_contracts import decode_message
from sous_contracts.envelope import Envelope, new_message_id
from sous_contracts.runs import StartOrderRun
from sous_contracts.topics import Topic, topic_for


async def send(settings: KafkaSettings, message: Envelope) -> None:
    """Produce one message, signed by this shell's principal."""
    value = message.to_json()
    headers = record_headers(message, value, cli_signer())
    producer = AIOKafkaProducer(**aiokafka_options(settings), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic_for(message).full_name(settings.topic_prefix),
            value,
            key=message.kafka_key(),
            headers=[(k, v.encode()) for k, v in headers.items()],
        )
    finally:
        await producer.stop()


def publish(message: Envelope) -> None:
    """Send one message to the configured broker; return once the broker has it."""
    asyncio.run(send(KafkaSettings(), message))


async def follow(
    settings: KafkaSettings, topics: list[Topic], from_beginning: bool
) -> AsyncGenerator[Envelope, None]:
    """Yield every message of `topics` from now on (or from the beginning), decoded."""
    names = [t.full_name(settings.topic_prefix) for t in topics]
    # No group: aiokafka assigns every partition of the topics to this reader.
    consumer = AIOKafkaConsumer(
        *names, **aiokafka_options(settings), group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        async with asyncio.timeout(15):
            while {tp.topic for tp in consumer.assignment()} != set(names):
                await consumer.getmany(timeout_ms=100)
        tps = list(consumer.assignment())
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)  # pin "now" before anything is sent
        while True:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    try:
                        yield decode_message(r.value)
                    except ValueError:
                        continue
    except TimeoutError:
        raise RuntimeError(f"topics {names} not found; is the stack up (`sous up`)?") from None
    finally:
        await consumer.stop()


def start_run(
    domain: str,
    recipe: str,
    *,
    variation: str | None,
    kitchen: str | None,
    params: dict[str, Any],
    idempotency_key: str | None = None,
) -> uuid.UUID:
    """Produce a StartOrderRun; return the run id."""
    command = start_command(domain, recipe, variation, kitchen, params, idempotency_key)
    publish(command)
    return command.order_run_id


def start_command(
    domain: str,
    recipe: str,
    variation: str | None,
    kitchen: str | None,
    params: dict[str, Any],
    idempotency_key: str | None,
) -> StartOrderRun:
    """Return the command that starts one order run, with a fresh run id."""
    return StartOrderRun(
        order_run_id=new_message_id(),
        producer="sous-cli",
        domain=domain,
        recipe=recipe,
        variation=variation,
        kitchen=kitchen,
        params=params,
        idempotency_key=idempotency_key,
    )
