"""Kind `freshness`: the age of the newest timestamp in a column."""

from __future__ import annotations

from sous_contracts.specs.tests import FreshnessCheck
from sous_test_runner.adapters.sqltext import ident, table
from sous_test_runner.domain.outcome import Outcome
from sous_test_runner.kinds.base import TestContext, register


@register("freshness", FreshnessCheck)
async def run_freshness(check: FreshnessCheck, ctx: TestContext) -> Outcome:
    """Measure now minus the newest timestamp, in seconds; an empty table is not fresh."""
    col = ident(check.column)
    query = (
        f"SELECT EXTRACT(EPOCH FROM now() - max({col})::timestamptz)::float8"
        f" FROM {table(check.table)}"
    )
    async with ctx.connection(check.connection) as conn:
        age = await conn.fetchval(query)
    if age is None:
        return Outcome.failed(f"no {check.column} values in {check.table}", None, check.max_age)
    holds = age <= check.max_age
    message = (
        f"newest {check.column} is {age:.0f}s old ({'≤' if holds else '>'} {check.max_age:g}s)"
    )
    return Outcome.judged(holds, message, round(age, 3), check.max_age)
