"""Kind `sql`: the scalar a query returns, compared by an operator to a value."""

from __future__ import annotations

from sous_contracts.specs.tests import SqlCheck
from sous_test_runner.domain.compare import compare, describe, jsonable
from sous_test_runner.domain.outcome import Outcome
from sous_test_runner.kinds.base import TestContext, register


@register("sql", SqlCheck)
async def run_sql(check: SqlCheck, ctx: TestContext) -> Outcome:
    """Run the query and compare its first column of its first row."""
    async with ctx.connection(check.connection) as conn:
        value = await conn.fetchval(check.query)
    holds = compare(value, check.op, check.value)
    return Outcome.judged(
        holds, describe("value", value, check.op, check.value), jsonable(value), check.value
    )
