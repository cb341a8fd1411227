"""sql step fixtures: a warehouse schema on the real PostgreSQL and an executor writing to it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from sous_common.settings import DatabaseSettings
from sous_contracts.steps import ExecuteStep
from sous_executor.service import Executor
from tests.executor.conftest import execute


@pytest.fixture
async def warehouse(db_settings: DatabaseSettings, monkeypatch) -> AsyncIterator[str]:
    """A schema to write into, reachable as connection `secret:warehouse` of sales.

    Its sql step record lives in the schema `<warehouse>_sous` (made by the first step).
    """
    name = f"wh_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(db_settings.url)
    await conn.execute(f"CREATE SCHEMA {name}")
    monkeypatch.setenv("SOUS_SECRET_SALES__WAREHOUSE", db_settings.url)
    try:
        yield name
    finally:
        await conn.execute(f"DROP SCHEMA {name} CASCADE")
        await conn.execute(f"DROP SCHEMA IF EXISTS {name}_sous CASCADE")
        await conn.close()


@pytest.fixture
async def sql_executor(start_executor, warehouse: str) -> AsyncIterator[Executor]:
    """An executor keeping its sql step record next to the warehouse, dropped with it."""
    async with start_executor(sql_record_schema=f"{warehouse}_sous") as ex:
        yield ex


def sql_step(sql: str, **spec: object) -> ExecuteStep:
    """An sql step on the warehouse connection."""
    return execute(
        "sql",
        {"connection": "warehouse", "sql": sql, **spec},
        connections={"warehouse": "secret:warehouse"},
    )
