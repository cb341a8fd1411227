"""The sql runner: statements one by one in one transaction on a named connection.

The script is split at top-level semicolons (quotes, dollar quotes and comments respected)
so each statement's rows affected and RETURNING rows can be reported; all statements share
one transaction, so a failing statement rolls back the ones before it.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from sous_contracts.common import Outputs
from sous_contracts.specs.common import parse_duration
from sous_contracts.steps import StepError
from sous_executor.adapters.context import StepContext
from sous_executor.domain.outcome import SpecError, StepFailure
from sous_executor.domain.sql_script import split_statements


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


async def run_sql(context: StepContext) -> Outputs:
    """Run the statements; outputs `rows_affected`, per statement counts and RETURNING rows."""
    script, dsn, statement_timeout_s = _script(context)
    statements = split_statements(script)
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
    counts: list[int | None] = []
    returned: list[dict[str, Any]] = []
    current = statements[0] if statements else None
    try:
        async with conn.transaction():
            ms = max(1, int(statement_timeout_s * 1000))
            await conn.execute(f"SET LOCAL statement_timeout = {ms}")
            for number, current in enumerate(statements, start=1):
                prepared = await conn.prepare(current.sql)
                rows = await prepared.fetch()
                counts.append(_rows_affected(prepared.get_statusmsg()))
                if prepared.get_attributes():
                    limit = context.settings.returning_rows_max
                    returned = [{k: _jsonable(v) for k, v in r.items()} for r in rows[:limit]]
                context.tail.line(f"statement {number}: {prepared.get_statusmsg()}")
    except asyncpg.PostgresError as exc:
        raise StepFailure(_sql_error(exc, current, len(counts) + 1, script)) from exc
    finally:
        await conn.close(timeout=5)
    values: dict[str, Any] = {
        "rows_affected": sum(c for c in counts if c is not None),
        "statements": len(statements),
        "rows_affected_by_statement": counts,
    }
    if returned:
        values["returned"] = returned
    return Outputs(values=values)


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
