"""The test history table: recording measured values and reading a test's series back."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from sous_common.db import AnyConnection
from sous_test_runner.domain.compare import as_number, is_number


@dataclass(frozen=True)
class SeriesKey:
    """Which series a test's values belong to: one test of one step in one variation."""

    domain: str
    recipe: str
    step: str
    test: str
    kitchen: str
    variation: str | None

    def args(self) -> tuple[str, ...]:
        """Return the key as query arguments (no variation is stored as '')."""
        v = self.variation or ""
        return (self.domain, self.recipe, self.step, self.test, self.kitchen, v)


@dataclass(frozen=True)
class HistoryRow:
    """One recorded result of a test."""

    suite_id: uuid.UUID
    """The suite execution."""
    order_run_id: uuid.UUID
    """The run."""
    measured_at: datetime
    """When it was measured."""
    status: str
    """Status of the result."""
    value: Any
    """Measured value."""
    threshold: Any
    """What it was compared with."""
    message: str
    """Explanation."""
    duration_s: float
    """Time the test took."""


@dataclass(frozen=True)
class Measurement:
    """One test result of a suite, to record."""

    key: SeriesKey
    kind: str
    severity: str
    status: str
    value: Any
    threshold: Any
    message: str
    duration_s: float


_SERIES = (
    "domain = $1 AND recipe = $2 AND step = $3 AND test = $4 AND kitchen = $5 AND variation = $6"
)


async def recent_values(
    conn: AnyConnection | asyncpg.Pool, key: SeriesKey, last: int
) -> list[float]:
    """Return the last `last` numeric values of a series, newest first."""
    rows = await conn.fetch(
        f"SELECT value_num FROM test_history WHERE {_SERIES} AND value_num IS NOT NULL"
        " ORDER BY measured_at DESC, id DESC LIMIT $7",
        *key.args(),
        last,
    )
    return [float(r["value_num"]) for r in rows]


@dataclass(frozen=True)
class SuiteResults:
    """The measurements of one suite run, to record."""

    order_run_id: uuid.UUID
    suite_id: uuid.UUID
    measurements: Sequence[Measurement]


async def record(
    conn: AnyConnection, suites: Sequence[SuiteResults], *, measured_at: datetime
) -> None:
    """Record suites' results in one statement; a (suite, test) recorded before is left."""
    rows = [
        (
            *m.key.args(),
            m.kind,
            m.severity,
            m.status,
            _numeric(m.value),
            json.dumps(m.value),
            json.dumps(m.threshold),
            m.message,
            m.duration_s,
            suite.order_run_id,
            suite.suite_id,
        )
        for suite in suites
        for m in suite.measurements
    ]
    if not rows:
        return
    columns = [list(column) for column in zip(*rows, strict=True)]
    await conn.execute(
        "INSERT INTO test_history (domain, recipe, step, test, kitchen, variation, kind,"
        " severity, status, value_num, value, threshold, message, duration_s, order_run_id,"
        " suite_id, measured_at) SELECT *, $17::timestamptz FROM unnest($1::text[], $2::text[],"
        " $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],"
        " $10::float8[], $11::jsonb[], $12::jsonb[], $13::text[], $14::float8[], $15::uuid[],"
        " $16::uuid[]) ON CONFLICT (suite_id, test) DO NOTHING",
        *columns,
        measured_at,
    )


async def read_history(
    pool: asyncpg.Pool | AnyConnection, key: SeriesKey, *, limit: int = 100
) -> list[HistoryRow]:
    """Return a test's recorded results, oldest first (the newest `limit` of them).

    The registry's REST API and the console read a test's trend through this function.
    """
    rows = await pool.fetch(
        "SELECT * FROM (SELECT id, suite_id, order_run_id, measured_at, status, value,"
        f" threshold, message, duration_s FROM test_history WHERE {_SERIES}"
        " ORDER BY measured_at DESC, id DESC LIMIT $7) AS newest ORDER BY measured_at, id",
        *key.args(),
        limit,
    )
    return [
        HistoryRow(
            suite_id=r["suite_id"],
            order_run_id=r["order_run_id"],
            measured_at=r["measured_at"],
            status=r["status"],
            value=json.loads(r["value"]) if r["value"] is not None else None,
            threshold=json.loads(r["threshold"]) if r["threshold"] is not None else None,
            message=r["message"],
            duration_s=r["duration_s"],
        )
        for r in rows
    ]


def _numeric(value: Any) -> float | None:
    if is_number(value):
        return float(as_number(value))
    return None
