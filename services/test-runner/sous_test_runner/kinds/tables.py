"""Kinds about a table's rows: `row_count`, `not_null`, `unique`, `accepted_values`."""

from __future__ import annotations

from typing import Any

from sous_contracts.specs.tests import (
    AcceptedValuesCheck,
    NotNullCheck,
    RowCountCheck,
    UniqueCheck,
)
from sous_test_runner.adapters.sqltext import columns, ident, table
from sous_test_runner.domain.outcome import Outcome
from sous_test_runner.kinds.base import TestContext, register


@register("row_count", RowCountCheck)
async def run_row_count(check: RowCountCheck, ctx: TestContext) -> Outcome:
    """Count rows (optionally filtered); without bounds the table must not be empty."""
    query = f"SELECT count(*) FROM {table(check.table)}"
    if check.where:
        query += f" WHERE {check.where}"
    async with ctx.connection(check.connection) as conn:
        rows = int(await conn.fetchval(query))
    low = 1 if check.min is None and check.max is None else check.min
    parts, holds = [], True
    if low is not None:
        holds = holds and rows >= low
        parts.append(f"{'≥' if rows >= low else '<'} min {low}")
    if check.max is not None:
        holds = holds and rows <= check.max
        parts.append(f"{'≤' if rows <= check.max else '>'} max {check.max}")
    threshold = {"min": low, "max": check.max}
    return Outcome.judged(holds, f"rows {rows} " + ", ".join(parts), rows, threshold)


@register("not_null", NotNullCheck)
async def run_not_null(check: NotNullCheck, ctx: TestContext) -> Outcome:
    """Count NULLs per column; any NULL fails."""
    counts = ", ".join(f"count(*) FILTER (WHERE {ident(c)} IS NULL)" for c in check.columns)
    async with ctx.connection(check.connection) as conn:
        row = await conn.fetchrow(f"SELECT {counts} FROM {table(check.table)}")
    assert row is not None
    nulls = {c: int(row[i]) for i, c in enumerate(check.columns)}
    total = sum(nulls.values())
    if total == 0:
        return Outcome.passed(f"no NULLs in {', '.join(check.columns)}", 0, 0)
    found = ", ".join(f"{c}: {n}" for c, n in nulls.items() if n)
    return Outcome.failed(f"{total} NULL value(s) ({found})", total, 0)


@register("unique", UniqueCheck)
async def run_unique(check: UniqueCheck, ctx: TestContext) -> Outcome:
    """Count values of the columns that occur more than once (rows with a NULL are skipped)."""
    cols = columns(check.columns)
    not_null = " AND ".join(f"{ident(c)} IS NOT NULL" for c in check.columns)
    query = (
        f"SELECT count(*), coalesce(sum(n), 0) FROM (SELECT count(*) AS n"
        f" FROM {table(check.table)} WHERE {not_null} GROUP BY {cols} HAVING count(*) > 1) d"
    )
    async with ctx.connection(check.connection) as conn:
        row = await conn.fetchrow(query)
    assert row is not None
    dupes, rows = int(row[0]), int(row[1])
    over = ", ".join(check.columns)
    if dupes == 0:
        return Outcome.passed(f"({over}) unique", 0, 0)
    return Outcome.failed(f"{dupes} duplicated value(s) of ({over}) in {rows} rows", dupes, 0)


def _text(value: Any) -> str:
    # Compared with the column cast to text, so booleans must read as PostgreSQL writes them.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@register("accepted_values", AcceptedValuesCheck)
async def run_accepted_values(check: AcceptedValuesCheck, ctx: TestContext) -> Outcome:
    """Find values of the column outside the accepted list (NULLs are not judged)."""
    col = ident(check.column)
    query = (
        f"SELECT v, n, sum(n) OVER () AS total FROM (SELECT {col}::text AS v, count(*) AS n"
        f" FROM {table(check.table)} WHERE {col} IS NOT NULL AND NOT ({col}::text = ANY($1))"
        " GROUP BY 1) s ORDER BY n DESC, v LIMIT 5"
    )
    accepted = [_text(v) for v in check.values]
    async with ctx.connection(check.connection) as conn:
        rows = await conn.fetch(query, accepted)
    if not rows:
        return Outcome.passed(f"{check.column} holds only accepted values", 0, check.values)
    total = int(rows[0]["total"])
    sample = ", ".join(f"{r['v']!r} ×{r['n']}" for r in rows)
    message = f"{total} row(s) of {check.column} outside the accepted values: {sample}"
    return Outcome.failed(message, total, check.values)
