"""Fixtures for every tier; servers come from, in order: SOUS_KAFKA_BOOTSTRAP/SOUS_DATABASE_URL,
testcontainers when a Docker engine answers, or deploy/local."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from sous_common.db import create_pool
from sous_common.migrate import Migration, common_migrations, migrate
from sous_common.settings import DatabaseSettings, KafkaSettings
from sous_common.topic_admin import delete_topics, ensure_topics
from tests.hang_watch import watch
from tests.signing import ENVIRONMENT as SIGNING_ENVIRONMENT

ROOT = Path(__file__).resolve().parent.parent

# The keys a deployment hands its services and its CLI (DESIGN §5.11); a test that wants
# another identity passes its own settings.
os.environ.update(SIGNING_ENVIRONMENT)
# Runtimes built in tests serve their ops endpoint on a port of their own, on loopback:
# many share this process and this machine, where 9400 is every service's default.
os.environ.setdefault("SOUS_OPS_PORT", "0")
os.environ.setdefault("SOUS_OPS_HOST", "127.0.0.1")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """A test that hangs ends the run with every thread's and task's stack (tests/hang_watch)."""
    capture = item.config.pluginmanager.getplugin("capturemanager")
    timer = watch(item.nodeid, lambda: capture and capture.suspend_global_capture(in_=False))
    try:
        yield
    finally:
        timer.cancel()


@dataclass(frozen=True)
class Servers:
    kafka_bootstrap: str
    database_url: str


def _docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _local_servers() -> Servers:
    out = subprocess.run(
        ["bash", str(ROOT / "deploy/local/infra.sh"), "up"],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return Servers(env["SOUS_KAFKA_BOOTSTRAP"], env["SOUS_DATABASE_URL"])


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    bootstrap, url = os.environ.get("SOUS_KAFKA_BOOTSTRAP"), os.environ.get("SOUS_DATABASE_URL")
    if bootstrap and url:
        yield Servers(bootstrap, url)
    elif _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        with (
            KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka,
            PostgresContainer("postgres:16", driver=None) as pg,
        ):
            yield Servers(kafka.get_bootstrap_server(), pg.get_connection_url())
    else:
        yield _local_servers()


@pytest.fixture
def prefix() -> str:
    """A fresh topic prefix, so each test has topics of its own."""
    return f"t{uuid.uuid4().hex[:12]}."


TEST_PARTITIONS = 2
"""Partitions of each test topic: enough to exercise keys and groups, few enough that a
whole suite's topics fit one small broker."""


@pytest.fixture
async def kafka_settings(servers: Servers, prefix: str) -> AsyncIterator[KafkaSettings]:
    settings = KafkaSettings(bootstrap=servers.kafka_bootstrap, topic_prefix=prefix)
    await ensure_topics(settings, partitions=TEST_PARTITIONS)
    yield settings
    await delete_topics(settings, prefix)


@pytest.fixture
def db_settings(servers: Servers) -> DatabaseSettings:
    return DatabaseSettings(url=servers.database_url, pool_max=5)


@pytest.fixture
def schema() -> str:
    """A fresh schema name for one test."""
    return f"t_{uuid.uuid4().hex[:12]}"


@contextlib.asynccontextmanager
async def migrated_pool(
    db_settings: DatabaseSettings, schema: str, migrations: list[Migration]
) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh schema with `migrations` applied; the schema is dropped after."""
    conn = await asyncpg.connect(db_settings.url)
    try:
        await migrate(conn, schema, migrations)
    finally:
        await conn.close()
    pool = await create_pool(db_settings, schema=schema)
    try:
        yield pool
    finally:
        await pool.close()
        await drop_schemas(db_settings.url, schema)


async def drop_schemas(database_url: str, *schemas: str) -> None:
    """Drop these schemas (those that exist) with all they hold, on a connection of its own."""
    conn = await asyncpg.connect(database_url)
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def pool(db_settings: DatabaseSettings, schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh schema with the shared tables (inbox, outbox) migrated."""
    async with migrated_pool(db_settings, schema, common_migrations()) as made:
        yield made


# A private Kafka and PostgreSQL for the tests that stop them (tests/private_infra.py); imported
# last: that module needs this one's Servers.
from tests.private_infra import private_infra  # noqa: E402, F401
