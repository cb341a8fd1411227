"""A client on Kafka sends a StartOrderRun with an idempotency key too long to index.

Built by hand and signed as any Kafka client would; the scheduler refuses it at once with an
OrderRunRejected naming the field and the limit (no database error, no retries, no dead
letter), and a valid command sent behind it on the same partition still runs.
"""

from __future__ import annotations

import json
import secrets
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from sous_common.kafka import aiokafka_options
from sous_contracts.deadletter import DeadLetter
from sous_contracts.runs import IDEMPOTENCY_KEY_MAX, OrderRunRejected, OrderRunStarted
from sous_contracts.topics import DEAD_LETTERS, ORDER_RUN_COMMANDS, RUN_EVENTS
from tests.scheduler.integration.conftest import publish_registry, recipe
from tests.scheduler.integration.test_runs import read_topics
from tests.scheduler.integration.test_signed_commands import ALICE, grant, start_json

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_an_oversized_idempotency_key_is_refused_naming_the_field(
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
    producer = AIOKafkaProducer(**aiokafka_options(kafka_settings), acks="all")
    await producer.start()
    try:
        for body in (hostile, barrier):
            value = json.dumps(body).encode()
            headers = [("type", b"StartOrderRun")]
            headers += [(k, v.encode()) for k, v in ALICE.headers(value).items()]
            # One partition for both, so the barrier is handled only after the hostile one.
            await producer.send_and_wait(
                ORDER_RUN_COMMANDS.full_name(kafka_settings.topic_prefix),
                value,
                key=hostile["order_run_id"].encode(),
                headers=headers,
            )
    finally:
        await producer.stop()

    def about(m: object, body: dict) -> bool:
        return str(getattr(m, "order_run_id", None)) == body["order_run_id"]

    seen = await read_topics(
        kafka_settings,
        [RUN_EVENTS, DEAD_LETTERS],
        lambda s: (
            any(isinstance(m, OrderRunStarted) and about(m, barrier) for m in s)
            and any(isinstance(m, OrderRunRejected) and about(m, hostile) for m in s)
        ),
    )
    (rejected,) = [m for m in seen if isinstance(m, OrderRunRejected) and about(m, hostile)]
    assert rejected.reason == (
        f"idempotency_key: {len(hostile['idempotency_key'])} characters, longer than the"
        f" limit of {IDEMPOTENCY_KEY_MAX}"
    )
    assert not any(isinstance(m, OrderRunStarted) and about(m, hostile) for m in seen)
    letters = [m for m in seen if isinstance(m, DeadLetter)]
    assert not any(hostile["message_id"] in m.payload for m in letters), letters
    stored = await scheduler.rt.pool.fetchval(
        "SELECT count(*) FROM runs WHERE id = $1", uuid.UUID(hostile["order_run_id"])
    )
    assert stored == 0
