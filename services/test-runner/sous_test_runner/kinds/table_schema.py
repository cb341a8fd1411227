"""Kind `schema`: columns are present with the types PostgreSQL names them by."""

from __future__ import annotations

import re

from sous_contracts.specs.tests import SchemaCheck
from sous_test_runner.domain.outcome import Outcome
from sous_test_runner.kinds.base import TestContext, register

_QUERY = (
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS full_type, t.typname"
    " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
    " WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped"
)


def _names(full_type: str, typname: str) -> set[str]:
    # `numeric(12,2)` also matches `numeric`; `int4` matches `integer`.
    return {full_type, re.sub(r"\(.*?\)", "", full_type).strip(), typname}


@register("schema", SchemaCheck)
async def run_schema(check: SchemaCheck, ctx: TestContext) -> Outcome:
    """Compare the table's columns and types with the expected ones."""
    async with ctx.connection(check.connection) as conn:
        rows = await conn.fetch(_QUERY, check.table)
    actual = {r["attname"]: (r["full_type"], r["typname"]) for r in rows}
    problems = []
    for column, expected in check.columns.items():
        if column not in actual:
            problems.append(f"{column} missing")
        elif expected.strip().lower() not in _names(*actual[column]):
            problems.append(f"{column} is {actual[column][0]}, expected {expected}")
    found = {c: t for c, (t, _) in actual.items() if c in check.columns}
    if problems:
        return Outcome.failed("; ".join(problems), found, check.columns)
    return Outcome.passed(f"{len(check.columns)} column(s) as expected", found, check.columns)
