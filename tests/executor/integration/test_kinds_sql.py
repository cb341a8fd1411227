"""sql steps against a real PostgreSQL: statements, RETURNING, errors with position, timeouts."""

from __future__ import annotations

import os

import asyncpg
import pytest

from sous_contracts.common import StepStatus
from tests.executor.conftest import execute
from tests.executor.integration.conftest import sql_step

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_statements_run_with_rows_affected_and_returning(
    harness, sql_executor, warehouse
) -> None:
    script = f"""
        -- a comment; with a semicolon
        CREATE TABLE {warehouse}.orders (id int, note text);
        INSERT INTO {warehouse}.orders VALUES (1, 'a;b'), (2, $$x;y$$), (3, 'it''s');
        UPDATE {warehouse}.orders SET note = note || '!' WHERE id > 1 RETURNING id, note;
    """
    finished = await harness.run(sql_step(script))
    assert finished.status == StepStatus.SUCCEEDED, finished.error
    values = finished.outputs.values
    assert values["rows_affected"] == 5
    assert values["rows_affected_by_statement"] == [None, 3, 2]
    assert sorted(values["returned"], key=lambda r: r["id"]) == [
        {"id": 2, "note": "x;y!"},
        {"id": 3, "note": "it's!"},
    ]


async def test_an_sql_error_names_the_statement_and_position(
    harness, sql_executor, warehouse
) -> None:
    script = f"CREATE TABLE {warehouse}.t (id int);\nSELECT nope FROM {warehouse}.t;"
    finished = await harness.run(sql_step(script))
    assert finished.status == StepStatus.FAILED
    assert finished.error.kind == "sql"
    assert finished.error.exception_type == "UndefinedColumnError"
    assert finished.error.sql_position == script.index("nope") + 1
    assert "statement 2 failed at line 2" in finished.error.message
    assert 'column "nope" does not exist' in finished.error.message
    conn = await asyncpg.connect(os.environ["SOUS_SECRET_SALES__WAREHOUSE"])
    try:  # one transaction: the CREATE before the failure was rolled back
        assert await conn.fetchval("SELECT to_regclass($1)", f"{warehouse}.t") is None
    finally:
        await conn.close()


async def test_statement_timeout_cancels_a_slow_statement(harness, sql_executor, warehouse) -> None:
    finished = await harness.run(sql_step("SELECT pg_sleep(10)", statement_timeout="200ms"))
    assert finished.status == StepStatus.FAILED
    assert finished.error.exception_type == "QueryCanceledError"
    assert "statement timeout" in finished.error.message
    assert finished.duration_s < 5


async def test_spec_errors_are_clear(harness, sql_executor, warehouse) -> None:
    only_file = await harness.run(
        execute(
            "sql",
            {"connection": "warehouse", "file": "sql/load.sql"},
            connections={"warehouse": "secret:warehouse"},
        )
    )
    assert only_file.error.kind == "spec"
    assert "sql/load.sql" in only_file.error.message
    unknown = await harness.run(
        execute(
            "sql",
            {"connection": "other", "sql": "SELECT 1"},
            connections={"warehouse": "secret:warehouse"},
        )
    )
    assert unknown.error.kind == "spec"
    assert "'other'" in unknown.error.message
    unresolved = await harness.run(
        execute(
            "sql",
            {"connection": "warehouse", "sql": "SELECT 1"},
            connections={"warehouse": "secret:not_set"},
        )
    )
    assert unresolved.error.kind == "spec"
    assert "'secret:not_set'" in unresolved.error.message
