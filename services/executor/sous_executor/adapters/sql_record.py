"""The record of committed sql steps, kept in the step's own database (exactly-once effects).

A sql step's transaction can commit just before its executor dies, unreported; the scheduler
then dispatches the step again as a new attempt. So the step's transaction also writes a row
keyed by `step_run_id` (the same for every attempt) into `<schema>.sql_step_runs`: the
step's effects and its row commit together or not at all. A later attempt finds the row and
reports the recorded outputs instead of running again. Two attempts racing meet on the key:
the second waits for the first's transaction, then rolls back and reports the first's result
if it committed, or runs if it rolled back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from sous_contracts.steps import ExecuteStep

TABLE = "sql_step_runs"
"""The record's table name, in the schema of the executor's `sql_record_schema` setting."""


@dataclass(frozen=True)
class Recorded:
    """A step whose transaction committed."""

    attempt: int
    """The attempt that committed it."""
    values: dict[str, Any]
    """Its outputs' values."""
    recorded_at: datetime
    """When that transaction began."""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table(schema: str) -> str:
    return f"{_ident(schema)}.{TABLE}"


async def ensure_table(conn: asyncpg.Connection, schema: str, timeout_ms: int) -> None:
    """Create the schema and table on first use; afterwards only look them up.

    CREATE SCHEMA needs the CREATE privilege on the database even when the schema exists,
    so each is created only when missing: a connection allowed only to use a schema (and
    table) an administrator made never needs it.
    """
    if await conn.fetchval("SELECT to_regclass($1)", _table(schema)) is not None:
        return
    async with conn.transaction():
        await conn.execute(f"SET LOCAL statement_timeout = {timeout_ms}")
        # Concurrent CREATE ... IF NOT EXISTS may still collide in the catalog: one at a time.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", _table(schema))
        if await conn.fetchval("SELECT to_regnamespace($1)", _ident(schema)) is None:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {_table(schema)} ("
            " step_run_id uuid PRIMARY KEY,"
            " order_run_id uuid NOT NULL,"
            " step text NOT NULL,"
            " attempt int NOT NULL,"
            " outputs jsonb,"
            " recorded_at timestamptz NOT NULL DEFAULT now())"
        )


async def claim(conn: asyncpg.Connection, schema: str, command: ExecuteStep) -> bool:
    """Write the step's row in the open transaction; False when another attempt's row exists.

    While another attempt's transaction holds the row this waits (up to the statement
    timeout) for it to end: committed, this returns False; rolled back, the row is ours.
    Under REPEATABLE READ or SERIALIZABLE a row committed meanwhile raises a serialization
    failure instead, which means the same.
    """
    try:
        inserted = await conn.fetchval(
            f"INSERT INTO {_table(schema)} (step_run_id, order_run_id, step, attempt)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (step_run_id) DO NOTHING RETURNING true",
            command.step_run_id,
            command.order_run_id,
            command.step,
            command.attempt,
        )
    except asyncpg.SerializationError:
        return False
    return bool(inserted)


async def complete(
    conn: asyncpg.Connection, schema: str, command: ExecuteStep, values: dict[str, Any]
) -> None:
    """Put the outputs on the step's row, in the transaction that claimed it."""
    await conn.execute(
        f"UPDATE {_table(schema)} SET outputs = $2::jsonb WHERE step_run_id = $1",
        command.step_run_id,
        json.dumps(values),
    )


async def recorded(conn: asyncpg.Connection, schema: str, command: ExecuteStep) -> Recorded | None:
    """Return the committed record of the step, if any."""
    row = await conn.fetchrow(
        f"SELECT attempt, outputs, recorded_at FROM {_table(schema)} WHERE step_run_id = $1",
        command.step_run_id,
    )
    if row is None:
        return None
    return Recorded(row["attempt"], json.loads(row["outputs"] or "{}"), row["recorded_at"])
