"""PostgreSQL read model of runs, their step attempts and test results."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sous_common.db import AnyConnection
from sous_contracts.runs import OrderRunDeduplicated
from sous_domain_registry.domain.entities import Entity

JSON_COLUMNS = ("params", "outputs", "tests", "cause", "datasets")
"""Columns of `runs` held as JSON."""


async def upsert_run(conn: AnyConnection, run_id: uuid.UUID, **fields: Any) -> None:
    """Create or update a run row with the given columns (JSON columns as Python values)."""
    fields = {k: json.dumps(v) if k in JSON_COLUMNS else v for k, v in fields.items()}
    cols = ["order_run_id", *fields]
    values = [run_id, *fields.values()]
    casts = ["" if c not in JSON_COLUMNS else "::jsonb" for c in cols]
    placeholders = ", ".join(f"${i + 1}{casts[i]}" for i in range(len(cols)))
    updates = (
        ", ".join(f"{c} = excluded.{c}" for c in fields) or "order_run_id = excluded.order_run_id"
    )
    await conn.execute(
        f"INSERT INTO runs ({', '.join(cols)}) VALUES ({placeholders})"
        f" ON CONFLICT (order_run_id) DO UPDATE SET {updates}, updated_at = now()",
        *values,
    )


async def run_of_key(
    conn: AnyConnection, domain: str, recipe: str, kitchen: str | None, key: str
) -> uuid.UUID | None:
    """Return the run an idempotency key started in (domain, recipe, kitchen), if known."""
    found: uuid.UUID | None = await conn.fetchval(
        "SELECT order_run_id FROM runs WHERE domain = $1 AND recipe = $2"
        " AND kitchen IS NOT DISTINCT FROM $3 AND idempotency_key = $4 AND duplicate_of IS NULL"
        " AND status <> 'rejected' ORDER BY updated_at LIMIT 1",
        domain,
        recipe,
        kitchen,
        key,
    )
    return found


async def deduplicated(conn: AnyConnection, event: OrderRunDeduplicated) -> None:
    """Point a repeated key's run at the run the key started, and remember that run's key."""
    await upsert_run(
        conn,
        event.order_run_id,
        domain=event.domain,
        recipe=event.recipe,
        kitchen=event.kitchen,
        status="deduplicated",
        idempotency_key=event.idempotency_key,
        duplicate_of=event.existing_order_run_id,
        reason=(
            f"idempotency key {event.idempotency_key!r} already started run "
            f"{event.existing_order_run_id}"
        ),
    )
    await conn.execute(
        "INSERT INTO runs (order_run_id, domain, recipe, kitchen, status, idempotency_key)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (order_run_id) DO UPDATE SET"
        " idempotency_key = coalesce(runs.idempotency_key, excluded.idempotency_key)",
        event.existing_order_run_id,
        event.domain,
        event.recipe,
        event.kitchen,
        event.status.value if event.status else "running",
        event.idempotency_key,
    )


async def step_attempt(
    conn: AnyConnection,
    run_id: uuid.UUID,
    step: str,
    attempt: int,
    status: str,
    *,
    at: datetime,
    reason: str | None = None,
    outputs: dict[str, Any] | None = None,
    log_tail: str = "",
) -> None:
    """Record a step attempt starting or finishing (with the end of its log when it finished)."""
    finished = status != "running"
    await conn.execute(
        "INSERT INTO run_steps (order_run_id, step, attempt, status, reason, outputs,"
        " started_at, finished_at, log_tail) VALUES ($1, $2, $3, $4, $5, $6::jsonb,"
        " CASE WHEN $7 THEN NULL ELSE $8::timestamptz END, CASE WHEN $7 THEN $8 END, $9)"
        " ON CONFLICT (order_run_id, step, attempt) DO UPDATE SET"
        " status = CASE WHEN $7 THEN excluded.status ELSE run_steps.status END,"
        " reason = coalesce(excluded.reason, run_steps.reason),"
        " outputs = CASE WHEN $7 THEN excluded.outputs ELSE run_steps.outputs END,"
        " started_at = coalesce(run_steps.started_at, excluded.started_at),"
        " finished_at = coalesce(excluded.finished_at, run_steps.finished_at),"
        " log_tail = CASE WHEN $7 THEN excluded.log_tail ELSE run_steps.log_tail END",
        run_id,
        step,
        attempt,
        status,
        reason,
        json.dumps(outputs or {}),
        finished,
        at,
        log_tail,
    )


async def test_result(conn: AnyConnection, run_id: uuid.UUID, row: dict[str, Any]) -> None:
    """Record (the latest) result of one test of a step."""
    await conn.execute(
        "INSERT INTO run_tests (order_run_id, step, test, kind, severity, status, value,"
        " message, at, result_id) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10)"
        " ON CONFLICT (order_run_id, step, test) DO UPDATE SET status = excluded.status,"
        " value = excluded.value, message = excluded.message, at = excluded.at,"
        " result_id = excluded.result_id",
        run_id,
        row["step"],
        row["test"],
        row["kind"],
        row["severity"],
        row["status"],
        json.dumps(row.get("value"), default=str),
        row.get("message", ""),
        row["at"],
        row.get("result_id"),
    )


def _run(r: Any) -> dict[str, Any]:
    out = dict(r)
    for k in JSON_COLUMNS:
        if k in out:
            out[k] = json.loads(out[k]) if out[k] is not None else None
    return out


async def get_run(conn: AnyConnection, run_id: uuid.UUID) -> dict[str, Any] | None:
    """Return a run with its step attempts and test results."""
    row = await conn.fetchrow("SELECT * FROM runs WHERE order_run_id = $1", run_id)
    if row is None:
        return None
    steps = await conn.fetch(
        "SELECT step, attempt, status, reason, outputs::text AS outputs, started_at, finished_at,"
        " log_tail"
        " FROM run_steps WHERE order_run_id = $1 ORDER BY started_at NULLS LAST, step, attempt",
        run_id,
    )
    tests = await conn.fetch(
        "SELECT step, test, kind, severity, status, value::text AS value, message, at,"
        " result_id"
        " FROM run_tests WHERE order_run_id = $1 ORDER BY step, test",
        run_id,
    )
    return {
        **_run(row),
        "steps": [{**dict(s), "outputs": json.loads(s["outputs"])} for s in steps],
        "test_results": [{**dict(t), "value": json.loads(t["value"] or "null")} for t in tests],
    }


async def list_runs(
    conn: AnyConnection,
    *,
    domains: list[str],
    recipe: str | None,
    kitchen: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Return the newest runs of the given domains."""
    rows = await conn.fetch(
        "SELECT * FROM runs WHERE domain = ANY($1::text[]) AND ($2::text IS NULL OR recipe = $2)"
        " AND ($3::text IS NULL OR kitchen = $3) ORDER BY updated_at DESC LIMIT $4",
        domains,
        recipe,
        kitchen,
        limit,
    )
    return [_run(r) for r in rows]


async def latest_per_recipe(conn: AnyConnection, kitchen: str) -> list[dict[str, Any]]:
    """Return the latest finished run of each recipe in a kitchen."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (domain, recipe) * FROM runs WHERE kitchen = $1"
        " AND status IN ('succeeded', 'failed', 'cancelled')"
        " ORDER BY domain, recipe, updated_at DESC",
        kitchen,
    )
    return [_run(r) for r in rows]


async def proven(conn: AnyConnection, kitchen: str, versions: list[Entity]) -> set[str]:
    """Return the ids of `versions` with a passing run in the kitchen since they were set.

    Passing: succeeded, of that very version, started no earlier than the version was
    applied, and no error-severity test of it failed.
    """
    rows = await conn.fetch(
        "SELECT v.entity_id FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])"
        " AS v(entity_id, domain, recipe, version)"
        " JOIN entities e ON e.entity_id = v.entity_id"
        " WHERE EXISTS (SELECT 1 FROM runs r WHERE r.kitchen = $1 AND r.domain = v.domain"
        " AND r.recipe = v.recipe AND r.spec_version = v.version AND r.status = 'succeeded'"
        " AND r.started_at >= e.updated_at AND coalesce((r.tests->>'failed')::int, 0) = 0"
        " AND NOT EXISTS (SELECT 1 FROM run_tests t WHERE t.order_run_id = r.order_run_id"
        " AND t.severity = 'error' AND t.status = 'failed'))",
        kitchen,
        [v.entity_id for v in versions],
        [v.domain for v in versions],
        [v.name for v in versions],
        [v.version for v in versions],
    )
    return {r["entity_id"] for r in rows}
