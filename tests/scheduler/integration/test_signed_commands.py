"""A hostile producer on the scheduler's topics: only signed commands of a scoped principal act.

Records are built by hand as any Kafka client would, then sent unsigned, signed with a key
that is not the principal's, naming a principal the signer is not, or by a principal
without the scope; each is refused with an OrderRunRejected (for run commands) and a dead
letter naming why, while a properly signed command beside them runs.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from sous_common.kafka import aiokafka_options
from sous_common.trust import Signer
from sous_contracts.deadletter import DeadLetter
from sous_contracts.registry import EntityKind
from sous_contracts.runs import OrderRunFinished, OrderRunRejected, OrderRunStarted
from sous_contracts.topics import DEAD_LETTERS, DOMAIN_EVENTS, ORDER_RUN_COMMANDS, RUN_EVENTS
from tests.scheduler.integration.conftest import publish_registry, recipe
from tests.scheduler.integration.test_runs import read_topics
from tests.scheduler.standins import entity, standins

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ALICE = Signer.generate("alice")
MALLORY = Signer.generate("mallory")


def grant(signer: Signer, scopes: dict) -> object:
    spec = {"principal": signer.principal, "scopes": scopes, "keys": [signer.public_key]}
    return entity(EntityKind.GRANT, signer.principal, spec)


def start_json(**fields) -> dict:
    return {
        "type": "StartOrderRun",
        "schema_version": 2,
        "message_id": str(uuid.uuid4()),
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "hostile-client",
        "order_run_id": str(uuid.uuid4()),
        "domain": "a",
        "recipe": "make",
        "variation": "prod",
        **fields,
    }


def completed_json(domain: str) -> dict:
    return {
        "type": "DomainRunCompleted",
        "schema_version": 2,
        "message_id": str(uuid.uuid4()),
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "hostile-client",
        "domain": domain,
        "recipe": "load",
        "kitchen": "prod",
        "status": "succeeded",
        "external": True,
    }


async def test_only_signed_and_scoped_commands_act(kafka_settings, scheduler) -> None:
    await publish_registry(
        kafka_settings,
        scheduler,
        [
            grant(ALICE, {"a": ["run", "publish-events"]}),
            grant(MALLORY, {"b": ["run", "publish-events"]}),
            entity(EntityKind.DOMAIN, "b", {"domain": "b"}),
            recipe("a", "make", {"one": {"run": {"kind": "noop"}}}),
        ],
    )
    commands = ORDER_RUN_COMMANDS.full_name(kafka_settings.topic_prefix)
    domain_events = DOMAIN_EVENTS.full_name(kafka_settings.topic_prefix)
    stranger = Signer.generate("alice")  # says alice, holds another key

    unsigned, forged_key = start_json(), start_json()
    named_admin, unscoped, good = start_json(principal="admin"), start_json(), start_json()
    ghost, foreign = completed_json("ghost"), completed_json("b")
    sent = [
        (commands, unsigned, None, "unsigned"),
        (commands, forged_key, stranger, "does not verify with the keys of 'alice'"),
        (commands, named_admin, ALICE, "principal 'alice' signed it but it names 'admin'"),
        (commands, unscoped, MALLORY, "principal 'mallory' lacks scope 'run' on domain 'a'"),
        (domain_events, ghost, ALICE, "unknown domain 'ghost'"),
        (
            domain_events,
            foreign,
            ALICE,
            "principal 'alice' lacks scope 'publish-events' on domain 'b'",
        ),
        (commands, good, ALICE, None),
    ]
    producer = AIOKafkaProducer(**aiokafka_options(kafka_settings), acks="all")
    await producer.start()
    try:
        for topic, body, signer, _ in sent:
            value = json.dumps(body).encode()
            headers = [("type", body["type"].encode())]
            if signer is not None:
                headers += [(k, v.encode()) for k, v in signer.headers(value).items()]
            key = (body.get("order_run_id") or body["domain"]).encode()
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()

    refused = [(body, why) for _, body, _, why in sent if why is not None]
    run_refusals = {body["order_run_id"] for body, _ in refused if "order_run_id" in body}
    async with standins(kafka_settings):
        seen = await read_topics(
            kafka_settings,
            [RUN_EVENTS, DEAD_LETTERS],
            lambda s: (
                sum(isinstance(m, DeadLetter) and m.error_kind == "unauthorized" for m in s)
                >= len(refused)
                and {str(m.order_run_id) for m in s if isinstance(m, OrderRunRejected)}
                >= run_refusals
                and any(
                    isinstance(m, OrderRunFinished) and str(m.order_run_id) == good["order_run_id"]
                    for m in s
                )
            ),
        )
    letters = [m for m in seen if isinstance(m, DeadLetter) and m.error_kind == "unauthorized"]
    for body, why in refused:
        (letter,) = [
            m for m in letters if json.loads(m.payload)["message_id"] == body["message_id"]
        ]
        assert why in letter.reason, letter.reason
        assert letter.consumer.endswith("sous-scheduler")
    for body, why in refused:
        if "order_run_id" in body:
            (rejected,) = [
                m
                for m in seen
                if isinstance(m, OrderRunRejected) and str(m.order_run_id) == body["order_run_id"]
            ]
            assert why in rejected.reason
    started = {str(m.order_run_id) for m in seen if isinstance(m, OrderRunStarted)}
    assert started & run_refusals == set()
    assert good["order_run_id"] in started
    principal = await scheduler.rt.pool.fetchval(
        "SELECT count(*) FROM runs WHERE id = $1", uuid.UUID(good["order_run_id"])
    )
    assert principal == 1
