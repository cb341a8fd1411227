"""A client on Kafka sends order-run commands whose text is too long to index or to copy.

Built by hand and signed as any Kafka client would: a StartOrderRun with a 100 kB
idempotency key, and a CancelOrderRun with a 600 kB reason. The scheduler refuses each at
once with an OrderRunRejected naming the field and the limit (no database error, no
retries, no dead letter), and a valid command sent behind it on the same partition acts.
"""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from sous_common.kafka import aiokafka_options
from sous_contracts.common import RunStatus
from sous_contracts.deadletter import DeadLetter
from sous_contracts.runs import (
    CANCEL_REASON_MAX,
    IDEMPOTENCY_KEY_MAX,
    OrderRunFinished,
    OrderRunRejected,
    OrderRunStarted,
)
from sous_contracts.topics import DEAD_LETTERS, ORDER_RUN_COMMANDS, RUN_EVENTS, Topic
from tests.scheduler.integration.conftest import publish_registry, recipe
from tests.scheduler.integration.test_runs import read_topics
from tests.scheduler.integration.test_signed_commands import ALICE, grant, start_json

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def cancel_json(order_run_id: str, reason: str) -> dict:
    return {
        "type": "CancelOrderRun",
        "schema_version": 2,
        "message_id": str(uuid.uuid4()),
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "hostile-client",
        "order_run_id": order_run_id,
        "reason": reason,
    }


async def send_signed(
    kafka_settings, bodies: list[dict], key: str, topic: Topic = ORDER_RUN_COMMANDS
) -> None:
    """Send the messages signed by alice, all on the partition of `key`, in their order."""
    producer = AIOKafkaProducer(**aiokafka_options(kafka_settings), acks="all")
    await producer.start()
    try:
        for body in bodies:
            value = json.dumps(body).encode()
            headers = [("type", body["type"].encode())]
            headers += [(k, v.encode()) for k, v in ALICE.headers(value).items()]
            await producer.send_and_wait(
                topic.full_name(kafka_settings.topic_prefix),
                value,
                key=key.encode(),
                headers=headers,
            )
    finally:
        await producer.stop()


def about(m: object, body: dict) -> bool:
    return str(getattr(m, "order_run_id", None)) == body["order_run_id"]


def refused(seen: list, body: dict) -> list[OrderRunRejected]:
    return [m for m in seen if isinstance(m, OrderRunRejected) and about(m, body)]


async def test_oversized_command_text_is_refused_naming_the_field(
    kafka_settings, scheduler
) -> None:
    await publish_registry(
        kafka_settings,
        scheduler,
        [grant(ALICE, {"a": ["run"]}), recipe("a", "make", {"one": {"run": {"kind": "noop"}}})],
    )
    # 100 kB of random text: PostgreSQL cannot compress it under its index entry limit.
    hostile = start_json(idempotency_key=secrets.token_urlsafe(75_000))
    barrier = start_json(idempotency_key="k" * IDEMPOTENCY_KEY_MAX)
    await send_signed(kafka_settings, [hostile, barrier], key=hostile["order_run_id"])
    seen = await read_topics(
        kafka_settings,
        [RUN_EVENTS, DEAD_LETTERS],
        lambda s: (
            any(isinstance(m, OrderRunStarted) and about(m, barrier) for m in s)
            and refused(s, hostile)
        ),
    )
    (rejected,) = refused(seen, hostile)
    assert rejected.reason == (
        f"idempotency_key: {len(hostile['idempotency_key'])} characters, longer than the"
        f" limit of {IDEMPOTENCY_KEY_MAX}"
    )
    assert not any(isinstance(m, OrderRunStarted) and about(m, hostile) for m in seen)
    stored = await scheduler.rt.pool.fetchval(
        "SELECT count(*) FROM runs WHERE id = $1", uuid.UUID(hostile["order_run_id"])
    )
    assert stored == 0

    # A cancel of the running barrier run with a reason too long to copy into its end event.
    long_cancel = cancel_json(barrier["order_run_id"], secrets.token_urlsafe(450_000))
    cancel = cancel_json(barrier["order_run_id"], "r" * CANCEL_REASON_MAX)
    await send_signed(kafka_settings, [long_cancel, cancel], key=barrier["order_run_id"])
    seen = await read_topics(
        kafka_settings,
        [RUN_EVENTS, DEAD_LETTERS],
        lambda s: any(isinstance(m, OrderRunFinished) and about(m, barrier) for m in s),
    )
    (rejected,) = refused(seen, barrier)
    assert rejected.reason == (
        f"reason: {len(long_cancel['reason'])} characters, longer than the limit of"
        f" {CANCEL_REASON_MAX}"
    )
    (finished,) = [m for m in seen if isinstance(m, OrderRunFinished) and about(m, barrier)]
    assert finished.status is RunStatus.CANCELLED
    assert finished.reason == cancel["reason"]
    letters = [m for m in seen if isinstance(m, DeadLetter)]
    for body in (hostile, long_cancel):
        assert not any(body["message_id"] in m.payload for m in letters), letters
