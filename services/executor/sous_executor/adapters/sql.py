"""The sql runner: statements one by one in one transaction on a named connection.

The script is split at top-level semicolons (quotes, dollar quotes and comments respected)
so each statement's rows affected and RETURNING rows can be reported; all statements share
one transaction, so a failing statement rolls back the ones before it. The same transaction
records the step (see `sql_record`), so a step that committed is never run again: a later
attempt reports what it recorded. Statements that would end that transaction are refused.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any, TypeVar

import asyncpg

from sous_contracts.common import Outputs
from sous_contracts.specs.common import parse_duration
from sous_contracts.steps import StepError
from sous_executor.adapters import sql_record
from sous_executor.adapters.context import StepContext
from sous_executor.domain.outcome import SpecError, StepFailure
from sous_executor.domain.sql_script import Statement, split_statements, transaction_command

T = TypeVar("T")


def _rows_affected(status: str | None) -> int | None:
    # "INSERT 0 3", "UPDATE 2", "SELECT 5", "CREATE TABLE" (no count)
    last = (status or "").rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else None


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


def _script(context: StepContext) -> tuple[str, str, float]:
    spec = context.command.spec
    sql = spec.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        if spec.get("file"):
            raise SpecError(
                f"sql step gives file {spec['file']!r} but no inline 'sql'; "
                "the registry inlines files when the recipe is applied"
            )
        raise SpecError("sql step has no 'sql' statements")
    name = spec.get("connection")
    if not isinstance(name, str) or name not in context.connections:
        raise SpecError(
            f"sql step's connection {name!r} is not among the step's connections "
            f"{sorted(context.connections)}"
        )
    try:
        timeout = parse_duration(spec.get("statement_timeout") or context.command.timeout_s)
    except ValueError as exc:
        raise SpecError(f"sql step's statement_timeout: {exc}") from exc
    return sql, context.connections[name], timeout


def _statements(script: str) -> list[Statement]:
    statements = split_statements(script)
    for number, statement in enumerate(statements, start=1):
        if command := transaction_command(statement.sql):
            raise SpecError(
                f"sql step's statement {number} is {command}: a sql step runs as one "
                "transaction, recorded with it so that it takes effect once; "
                "split the script into steps instead"
            )
    return statements


class _RecordedBefore(Exception):
    """Another attempt of the step committed (or is committing); leave the transaction."""


async def run_sql(context: StepContext) -> Outputs:
    """Run the statements once per step; outputs `rows_affected`, counts and RETURNING rows.

    An attempt of a step that already committed runs nothing and returns the outputs the
    committing attempt recorded.
    """
    script, dsn, statement_timeout_s = _script(context)
    statements = _statements(script)
    try:
        conn = await asyncpg.connect(dsn, timeout=min(30.0, context.command.timeout_s))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise StepFailure(
            StepError(
                kind="sql",
                message=f"cannot connect: {type(exc).__name__}: {exc}",
                exception_type=type(exc).__name__,
            )
        ) from exc
    try:
        values = await _run_once(conn, context, statements, script, statement_timeout_s)
    finally:
        await conn.close(timeout=5)
    return Outputs(values=values)


async def _run_once(
    conn: asyncpg.Connection,
    context: StepContext,
    statements: list[Statement],
    script: str,
    statement_timeout_s: float,
) -> dict[str, Any]:
    command, schema = context.command, context.settings.sql_record_schema
    ms = max(1, int(statement_timeout_s * 1000))
    counts: list[int | None] = []
    returned: list[dict[str, Any]] = []
    current = statements[0] if statements else None
    try:
        await _recording(sql_record.ensure_table(conn, schema, ms), schema)
        async with conn.transaction():
            await conn.execute(f"SET LOCAL statement_timeout = {ms}")
            if not await _recording(sql_record.claim(conn, schema, command), schema):
                raise _RecordedBefore
            for number, current in enumerate(statements, start=1):
                prepared = await conn.prepare(current.sql)
                rows = await prepared.fetch()
                counts.append(_rows_affected(prepared.get_statusmsg()))
                if prepared.get_attributes():
                    limit = context.settings.returning_rows_max
                    returned = [{k: _jsonable(v) for k, v in r.items()} for r in rows[:limit]]
                context.tail.line(f"statement {number}: {prepared.get_statusmsg()}")
            values: dict[str, Any] = {
                "rows_affected": sum(c for c in counts if c is not None),
                "statements": len(statements),
                "rows_affected_by_statement": counts,
            }
            if returned:
                values["returned"] = returned
            await _recording(sql_record.complete(conn, schema, command, values), schema)
    except _RecordedBefore:
        return await _recorded_values(conn, context)
    except asyncpg.PostgresError as exc:
        raise StepFailure(_sql_error(exc, current, len(counts) + 1, script)) from exc
    return values


async def _recording(step: Awaitable[T], schema: str) -> T:
    """Await a step of the record; its database errors fail the attempt as the record's."""
    try:
        return await step
    except asyncpg.PostgresError as exc:
        raise StepFailure(_record_error(exc, schema)) from exc


async def _recorded_values(conn: asyncpg.Connection, context: StepContext) -> dict[str, Any]:
    schema = context.settings.sql_record_schema
    recorded = await _recording(sql_record.recorded(conn, schema, context.command), schema)
    if recorded is None:  # a serialization failure not caused by a committed record
        raise StepFailure(
            StepError(kind="sql", message="another attempt of this step ran concurrently; not run")
        )
    context.tail.line(
        f"[sous] attempt {recorded.attempt} committed this step "
        f"(transaction of {recorded.recorded_at.isoformat()}); not run again, its outputs reported"
    )
    return recorded.values


def _record_error(exc: asyncpg.PostgresError, schema: str) -> StepError:
    message = f"cannot record the step in {schema}.{sql_record.TABLE}: {type(exc).__name__}: {exc}"
    if isinstance(exc, asyncpg.QueryCanceledError):
        message += "; another attempt of this step may still be in its transaction"
    elif isinstance(exc, asyncpg.InsufficientPrivilegeError):
        message += " (the privileges the connection needs are in the executor's README)"
    return StepError(kind="sql", message=message, exception_type=type(exc).__name__)


def _sql_error(exc: asyncpg.PostgresError, statement: Any, number: int, script: str) -> StepError:
    position: int | None = None
    raw = getattr(exc, "position", None)
    if raw and str(raw).isdigit() and statement is not None:
        position = statement.offset + int(raw)  # 1-based within the whole script
    where = ""
    if position is not None:
        line = script.count("\n", 0, position - 1) + 1
        where = f" at line {line}, character {position}"
    sqlstate = getattr(exc, "sqlstate", None)
    message = f"statement {number} failed{where}: {type(exc).__name__} [{sqlstate}]: {exc}"
    if detail := getattr(exc, "detail", None):
        message += f" ({detail})"
    return StepError(
        kind="sql", message=message, sql_position=position, exception_type=type(exc).__name__
    )
