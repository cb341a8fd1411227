"""`infra.sh up --secure`: each principal may do what deploy/README.md's ACL table says, no more.

Starts its own SASL/SCRAM broker (and PostgreSQL, which infra.sh always starts) in a
temporary run folder, so it never touches the broker other tests share.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from pydantic import SecretStr

from sous.kafka_access import Grant, Operation, ResourceType, grants
from sous.kafka_security import apply_acls
from sous_common.kafka import aiokafka_options
from sous_common.settings import KafkaSettings
from sous_common.topic_admin import ensure_topics
from sous_contracts.envelope import Envelope
from sous_contracts.runs import StartOrderRun
from sous_contracts.steps import ExecuteStep, StepStarted
from sous_contracts.testing import sample_messages
from sous_contracts.topics import ORDER_RUN_COMMANDS, STEP_COMMANDS, STEP_EVENTS
from tests.conftest import ROOT

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

INFRA = ROOT / "deploy" / "local" / "infra.sh"
M = TypeVar("M", bound=Envelope)


@dataclass(frozen=True)
class SecuredBroker:
    bootstrap: str
    users: Path

    def settings(self, principal: str, *, password: str | None = None) -> KafkaSettings:
        """Client settings of a principal, from the env file infra.sh wrote for it."""
        lines = (self.users / f"{principal}.env").read_text().splitlines()
        env = dict(line.split("=", 1) for line in lines if "=" in line)
        return KafkaSettings(
            bootstrap=self.bootstrap,
            topic_prefix="",
            security_protocol=env["SOUS_KAFKA_SECURITY_PROTOCOL"],
            sasl_mechanism=env["SOUS_KAFKA_SASL_MECHANISM"],
            sasl_username=env["SOUS_KAFKA_SASL_USERNAME"],
            sasl_password=SecretStr(password or env["SOUS_KAFKA_SASL_PASSWORD"]),
            request_timeout_ms=10_000,
        )


def _infra(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INFRA), *args], env=env, capture_output=True, text=True, timeout=240
    )


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    # The caller's SOUS_KAFKA_* (a shared broker, a topic prefix) must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUS_KAFKA_")}
    env |= {"SOUS_RUN_DIR": str(tmp_path_factory.mktemp("secured")), "SOUS_PYTHON": sys.executable}
    try:
        up = _infra(env, "up", "--secure")
        assert up.returncode == 0, up.stderr
        lines = dict(line.split("=", 1) for line in up.stdout.splitlines())
        assert lines["SOUS_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
        yield SecuredBroker(lines["SOUS_KAFKA_BOOTSTRAP"], Path(lines["SOUS_LOCAL_KAFKA_USERS"]))
    finally:
        _infra(env, "down", "--purge")


@pytest.fixture(scope="module")
async def broker(secured: SecuredBroker) -> SecuredBroker:
    """The secured broker with the catalog's topics, created by the super user."""
    await ensure_topics(secured.settings("sous-admin"), partitions=1)
    return secured


def _sample(kind: type[M]) -> M:
    return next(m for m in sample_messages() if isinstance(m, kind))


async def _produce(settings: KafkaSettings, topic: str, message: Envelope) -> None:
    producer = AIOKafkaProducer(**aiokafka_options(settings), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, message.to_json(), key=message.kafka_key())
    finally:
        await producer.stop()


async def test_executor_writes_step_events_but_not_order_run_commands(broker) -> None:
    executor = broker.settings("sous-executor")
    await _produce(executor, STEP_EVENTS.name, _sample(StepStarted))
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(executor, ORDER_RUN_COMMANDS.name, _sample(StartOrderRun))


async def test_external_client_starts_runs_but_cannot_read_steps(broker) -> None:
    client = broker.settings("example-order-client")
    await _produce(client, ORDER_RUN_COMMANDS.name, _sample(StartOrderRun))
    consumer = AIOKafkaConsumer(
        STEP_EVENTS.name, **aiokafka_options(client), group_id=None, auto_offset_reset="earliest"
    )
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await consumer.start()
            async with asyncio.timeout(15):
                while True:
                    await consumer.getmany(timeout_ms=200)
    finally:
        await consumer.stop()


async def test_wrong_password_fails_authentication(broker, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="aiokafka")
    producer = AIOKafkaProducer(
        **aiokafka_options(broker.settings("sous-executor", password="not-the-password"))
    )
    try:
        with pytest.raises(KafkaConnectionError):
            await producer.start()
    finally:
        await producer.stop()
    assert "SaslAuthenticationFailed" in caplog.text


async def test_service_consumes_its_topic_in_its_own_group_only(broker) -> None:
    await _produce(broker.settings("sous-scheduler"), STEP_COMMANDS.name, _sample(ExecuteStep))
    executor = broker.settings("sous-executor")

    def consumer(group: str) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            STEP_COMMANDS.name,
            **aiokafka_options(executor),
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )

    own = consumer("sous-executor")
    await own.start()
    try:
        async with asyncio.timeout(20):
            record = await own.getone()
        await own.commit()
    finally:
        await own.stop()
    assert record.key == _sample(ExecuteStep).kafka_key()

    other = consumer("sous-scheduler")
    with pytest.raises(GroupAuthorizationFailedError):
        try:
            await other.start()
            async with asyncio.timeout(15):
                await other.getone()
        finally:
            await other.stop()


async def _may_write(settings: KafkaSettings, topic: str) -> bool:
    try:
        await _produce(settings, topic, _sample(StartOrderRun))
    except TopicAuthorizationFailedError:
        return False
    return True


async def test_apply_acls_revokes_a_grant_the_model_does_not_list(broker) -> None:
    admin, executor = broker.settings("sous-admin"), broker.settings("sous-executor")
    topic = ORDER_RUN_COMMANDS.name
    too_much = Grant(ResourceType.TOPIC, topic, "User:sous-executor", Operation.WRITE)
    # The broker applies ACL changes from its metadata log a moment after they commit.
    assert await apply_acls(admin, grants() | {too_much}) == (1, 0)
    async with asyncio.timeout(15):
        while not await _may_write(executor, topic):
            await asyncio.sleep(0.1)

    assert await apply_acls(admin, grants()) == (0, 1)
    async with asyncio.timeout(15):
        while await _may_write(executor, topic):
            await asyncio.sleep(0.1)
