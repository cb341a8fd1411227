"""sql steps take effect once: another attempt of a step that committed reports its outputs.

The step's transaction records the step in the warehouse; these tests show what a user would
notice without it: a load that lands twice.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from sous_common.settings import DatabaseSettings
from sous_contracts.common import StepStatus
from sous_contracts.envelope import new_message_id
from sous_contracts.steps import ExecuteStep, StepFinished
from tests.executor.conftest import Harness
from tests.executor.integration.conftest import sql_step

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def again(command: ExecuteStep, attempt: int) -> ExecuteStep:
    """The scheduler's next attempt of the same step: same step_run_id, a new message."""
    return command.model_copy(update={"attempt": attempt, "message_id": new_message_id()})


async def finished(harness: Harness, command: ExecuteStep) -> StepFinished:
    def of_attempt() -> list[StepFinished]:
        events = harness.of(command.step_run_id, StepFinished)
        return [e for e in events if e.attempt == command.attempt]

    return (await harness.wait_for(of_attempt))[0]


async def in_warehouse(script: str) -> None:
    conn = await asyncpg.connect(os.environ["SOUS_SECRET_SALES__WAREHOUSE"])
    try:
        await conn.execute(script)
    finally:
        await conn.close()


async def loads(warehouse: str) -> list[tuple[object, ...]]:
    """The rows the steps loaded."""
    conn = await asyncpg.connect(os.environ["SOUS_SECRET_SALES__WAREHOUSE"])
    try:
        return [tuple(r) for r in await conn.fetch(f"SELECT id, note FROM {warehouse}.loads")]
    finally:
        await conn.close()


def load(warehouse: str) -> str:
    return f"INSERT INTO {warehouse}.loads (note) VALUES ('day 1') RETURNING id, note"


async def test_an_attempt_after_a_commit_nobody_heard_of_reports_it_and_runs_nothing(
    harness, start_executor, warehouse
) -> None:
    await in_warehouse(f"CREATE TABLE {warehouse}.loads (id serial PRIMARY KEY, note text)")
    record = f"{warehouse}_sous"
    first = sql_step(load(warehouse))
    async with start_executor(worker_id="committed-then-died", sql_record_schema=record):
        one = await harness.run(first)
    assert one.status == StepStatus.SUCCEEDED, one.error
    # Its StepFinished counts as lost: the scheduler dispatches the step again, elsewhere.
    second = again(first, 2)
    async with start_executor(worker_id="next", sql_record_schema=record):
        await harness.send(second)
        two = await finished(harness, second)
    assert two.status == StepStatus.SUCCEEDED, two.error
    assert two.outputs == one.outputs
    assert two.outputs.values["returned"] == [{"id": 1, "note": "day 1"}]
    assert "attempt 1 committed this step" in two.log_tail
    assert await loads(warehouse) == [(1, "day 1")]


@pytest.mark.parametrize("isolation", ["default", "serializable"])
async def test_two_attempts_at_once_take_effect_once(
    harness, sql_executor, warehouse, monkeypatch, isolation
) -> None:
    if isolation != "default":  # the warehouse's default for every transaction
        url = os.environ["SOUS_SECRET_SALES__WAREHOUSE"]
        monkeypatch.setenv(
            "SOUS_SECRET_SALES__WAREHOUSE", f"{url}?default_transaction_isolation={isolation}"
        )
    await in_warehouse(
        f"CREATE TABLE {warehouse}.loads (id serial PRIMARY KEY, note text);"
        f"CREATE TABLE {warehouse}.gate ()"
    )
    first = sql_step(f"SELECT count(*) FROM {warehouse}.gate; {load(warehouse)}")
    second = again(first, 2)
    url = os.environ["SOUS_SECRET_SALES__WAREHOUSE"]
    gate, watch = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        closed = gate.transaction()
        await closed.start()
        await gate.execute(f"LOCK TABLE {warehouse}.gate IN ACCESS EXCLUSIVE MODE")
        await harness.send(first)
        await harness.send(second)
        # Both attempts are inside their transactions: one waits at the gate, the other at
        # the gate too or behind the first one's record. (Watched from outside a transaction,
        # whose view of pg_stat_activity would stay as first read.)
        async with asyncio.timeout(20):
            while (
                await watch.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND query LIKE $1",
                    f"%{warehouse}%",
                )
                < 2
            ):
                await asyncio.sleep(0.02)
        await closed.commit()
    finally:
        await gate.close()
        await watch.close()
    results = [await finished(harness, first), await finished(harness, second)]
    assert [r.status for r in results] == [StepStatus.SUCCEEDED] * 2, [r.error for r in results]
    assert results[0].outputs == results[1].outputs
    assert sum("committed this step" in r.log_tail for r in results) == 1
    assert await loads(warehouse) == [(1, "day 1")]


async def test_an_attempt_that_rolled_back_leaves_no_record(
    harness, sql_executor, warehouse
) -> None:
    first = sql_step(load(warehouse))
    failed = await harness.run(first)
    assert failed.status == StepStatus.FAILED
    assert "UndefinedTableError" in failed.error.message
    await in_warehouse(f"CREATE TABLE {warehouse}.loads (id serial PRIMARY KEY, note text)")
    second = again(first, 2)
    await harness.send(second)
    ran = await finished(harness, second)
    assert ran.status == StepStatus.SUCCEEDED, ran.error
    assert "committed this step" not in ran.log_tail
    assert await loads(warehouse) == [(1, "day 1")]


async def test_a_script_that_ends_its_transaction_is_refused(
    harness, sql_executor, warehouse
) -> None:
    await in_warehouse(f"CREATE TABLE {warehouse}.loads (id serial PRIMARY KEY, note text)")
    refused = await harness.run(sql_step(f"{load(warehouse)}; COMMIT; {load(warehouse)}"))
    assert refused.status == StepStatus.FAILED
    assert refused.error.kind == "spec"
    assert "statement 2 is COMMIT" in refused.error.message
    assert await loads(warehouse) == []


@pytest.fixture
async def loader(db_settings: DatabaseSettings, warehouse: str, monkeypatch) -> AsyncIterator[str]:
    """The warehouse connection as a role that may only load `loads` (no CREATE anywhere)."""
    role = f"loader_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(db_settings.url)
    await admin.execute(
        f"CREATE ROLE {role} LOGIN PASSWORD 'loader';"
        f"CREATE TABLE {warehouse}.loads (id serial PRIMARY KEY, note text);"
        f"GRANT USAGE ON SCHEMA {warehouse} TO {role};"
        f"GRANT SELECT, INSERT ON {warehouse}.loads TO {role};"
        f"GRANT USAGE ON SEQUENCE {warehouse}.loads_id_seq TO {role}"
    )
    url = urlsplit(db_settings.url)
    as_loader = url._replace(netloc=f"{role}:loader@{url.hostname}:{url.port}")
    monkeypatch.setenv("SOUS_SECRET_SALES__WAREHOUSE", urlunsplit(as_loader))
    try:
        yield role
    finally:
        await admin.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
        await admin.close()


async def test_a_connection_that_may_not_create_uses_the_record_its_administrator_made(
    harness, sql_executor, warehouse, loader, db_settings
) -> None:
    first = sql_step(load(warehouse))
    refused = await harness.run(first)
    assert refused.status == StepStatus.FAILED
    assert f"cannot record the step in {warehouse}_sous.sql_step_runs" in refused.error.message
    assert refused.error.exception_type == "InsufficientPrivilegeError"
    admin = await asyncpg.connect(db_settings.url)
    try:  # what the executor's README gives an administrator to run
        await admin.execute(
            f"CREATE SCHEMA {warehouse}_sous;"
            f"CREATE TABLE {warehouse}_sous.sql_step_runs ("
            " step_run_id uuid PRIMARY KEY, order_run_id uuid NOT NULL, step text NOT NULL,"
            " attempt int NOT NULL, outputs jsonb,"
            " recorded_at timestamptz NOT NULL DEFAULT now());"
            f"GRANT USAGE ON SCHEMA {warehouse}_sous TO {loader};"
            f"GRANT SELECT, INSERT, UPDATE ON {warehouse}_sous.sql_step_runs TO {loader}"
        )
    finally:
        await admin.close()
    second, third = again(first, 2), again(first, 3)
    await harness.send(second)
    ran = await finished(harness, second)
    assert ran.status == StepStatus.SUCCEEDED, ran.error
    await harness.send(third)
    reported = await finished(harness, third)
    assert reported.status == StepStatus.SUCCEEDED, reported.error
    assert reported.outputs == ran.outputs
    assert "attempt 2 committed this step" in reported.log_tail
    assert await loads(warehouse) == [(1, "day 1")]
