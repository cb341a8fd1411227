"""A test-runner on the real servers, a warehouse schema to test, and an ops-console reader."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from sous_test_runner.app import build
from sous_test_runner.service import Deps
from sous_test_runner.settings import TestRunnerSettings
from tests.conftest import drop_schemas
from tests.test_runner.integration.harness import WAREHOUSE_ENV, Console


@pytest.fixture
async def warehouse(db_settings, monkeypatch) -> AsyncIterator[str]:
    """A fresh schema with `orders` (clean, 1200 rows) and `messy` (nulls, dupes, stale)."""
    name = f"wh_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(db_settings.url)
    now = datetime.now(UTC)
    try:
        await conn.execute(f"CREATE SCHEMA {name}")
        await conn.execute(
            f"CREATE TABLE {name}.orders (id integer PRIMARY KEY, customer text NOT NULL,"
            " status text NOT NULL, amount numeric(12, 2), created_at timestamptz NOT NULL)"
        )
        await conn.copy_records_to_table(
            "orders",
            schema_name=name,
            records=[
                (i, f"c{i % 50}", ("new", "paid", "shipped")[i % 3], Decimal(i) / 2, now)
                for i in range(1200)
            ],
        )
        await conn.execute(
            f"CREATE TABLE {name}.messy (id integer, customer text, status text,"
            " created_at timestamptz)"
        )
        await conn.executemany(
            f"INSERT INTO {name}.messy VALUES ($1, $2, $3, $4)",
            [
                (1, "a", "new", now - timedelta(days=3)),
                (1, None, "lost", now - timedelta(days=3)),
                (2, "b", "weird", now - timedelta(days=2)),
            ],
        )
    finally:
        await conn.close()
    monkeypatch.setenv(WAREHOUSE_ENV, db_settings.url)
    yield name
    await drop_schemas(db_settings.url, name)


@pytest.fixture
async def runner(kafka_settings, db_settings, schema, tmp_path) -> AsyncIterator[Deps]:
    """The test-runner service, running on the real broker and database."""
    settings = TestRunnerSettings(
        kafka=kafka_settings, database=db_settings, db_schema=schema, secrets_dir=tmp_path
    )
    deps = build(settings)
    async with deps.runtime.running():
        yield deps
    await drop_schemas(db_settings.url, schema)


@pytest.fixture
async def console(kafka_settings) -> AsyncIterator[Console]:
    c = Console(kafka_settings)
    await c.producer.start()
    await c.consumer.start()
    try:
        yield c
    finally:
        await c.consumer.stop()
        await c.producer.stop()
