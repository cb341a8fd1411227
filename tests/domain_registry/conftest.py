"""Fixtures of the registry's tests: the REST API on a fresh schema and fresh topics."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr

from sous_common.kafka import aiokafka_options
from sous_common.runtime import Runtime
from sous_common.settings import DatabaseSettings, KafkaSettings
from sous_common.topic_admin import ensure_topics
from sous_contracts import decode_message
from sous_domain_registry.api import create_api
from sous_domain_registry.settings import RegistrySettings
from tests.conftest import drop_schemas

ADMIN_TOKEN = "test-admin-token"


@dataclass
class Registry:
    client: httpx.AsyncClient
    settings: RegistrySettings
    pool: asyncpg.Pool
    runtime: Runtime

    async def token(self, principal: str, scopes: dict[str, list[str]]) -> dict[str, str]:
        r = await self.client.post("/v1/tokens", json={"principal": principal, "scopes": scopes})
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@asynccontextmanager
async def running_registry(
    kafka: KafkaSettings, database: DatabaseSettings, schema: str
) -> AsyncIterator[Registry]:
    """The REST API and consumers on a schema of their own, dropped afterwards."""
    settings = RegistrySettings(
        schema_name=schema, admin_token=SecretStr(ADMIN_TOKEN), kafka=kafka, database=database
    )
    api = create_api(settings)
    try:
        async with api.router.lifespan_context(api):
            transport = httpx.ASGITransport(app=api)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://registry", headers=admin()
            ) as client:
                yield Registry(client, settings, api.state.runtime.pool, api.state.runtime)
    finally:
        await drop_schemas(database.url, schema)


@pytest.fixture
async def registry(kafka_settings, db_settings, schema) -> AsyncIterator[Registry]:
    """A registry of one test's own."""
    async with running_registry(kafka_settings, db_settings, schema) as reg:
        yield reg


@pytest.fixture(scope="module")
async def shared_registry(servers) -> AsyncIterator[Registry]:
    """One registry for a whole module of tests that leave the catalog as they found it."""
    kafka = KafkaSettings(
        bootstrap=servers.kafka_bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:12]}."
    )
    await ensure_topics(kafka)
    database = DatabaseSettings(url=servers.database_url, pool_max=5)
    async with running_registry(kafka, database, f"t_{uuid.uuid4().hex[:12]}") as reg:
        yield reg


async def read_topic(settings, topic: str, *, until, timeout: float = 20.0) -> list:
    """Read a topic from the start until `until(messages)` holds."""
    consumer = AIOKafkaConsumer(
        topic,
        **aiokafka_options(settings),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list = []
    try:
        async with asyncio.timeout(timeout):
            while not until(out):
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    out.extend(decode_message(r.value) for r in records)
    finally:
        await consumer.stop()
    return out
