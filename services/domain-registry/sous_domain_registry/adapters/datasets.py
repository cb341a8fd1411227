"""PostgreSQL read model of dataset lineage: one row per dataset, role, step and kitchen."""

from __future__ import annotations

import json
from typing import Any

from sous_common.db import AnyConnection
from sous_contracts.runs import OrderRunFinished


async def record(conn: AnyConnection, event: OrderRunFinished) -> None:
    """Fold the datasets of a finished run in; an older run never overwrites a newer one."""
    rows = [
        (dataset, role, step.step, step.status, json.dumps(step.tests.model_dump(mode="json")))
        for step in event.datasets
        for role, names in (("writes", step.outputs), ("reads", step.inputs))
        for dataset in names
    ]
    if not rows:
        return
    await conn.executemany(
        "INSERT INTO dataset_uses (dataset, role, domain, recipe, step, kitchen, order_run_id,"
        " status, tests, at) VALUES ($1, $2, $6, $7, $3, $8, $9, $4, $5::jsonb, $10)"
        " ON CONFLICT (dataset, role, domain, recipe, step, kitchen) DO UPDATE SET"
        " order_run_id = excluded.order_run_id, status = excluded.status,"
        " tests = excluded.tests, at = excluded.at WHERE dataset_uses.at <= excluded.at",
        [
            (*r, event.domain, event.recipe, event.kitchen, event.order_run_id, event.occurred_at)
            for r in rows
        ],
    )


def _row(r: Any) -> dict[str, Any]:
    row = dict(r)
    row["tests"] = json.loads(row["tests"]) if isinstance(row["tests"], str) else row["tests"]
    return row


async def uses(
    conn: AnyConnection, *, domains: list[str], name: str | None = None, kitchen: str | None = None
) -> list[dict[str, Any]]:
    """Return the use rows by steps of these domains (of one dataset, in one kitchen)."""
    found = await conn.fetch(
        "SELECT * FROM dataset_uses WHERE domain = ANY($1::text[])"
        " AND ($2::text IS NULL OR dataset = $2) AND ($3::text IS NULL OR kitchen = $3)"
        " ORDER BY dataset, at DESC, domain, recipe, step LIMIT 10000",
        domains,
        name,
        kitchen,
    )
    return [_row(r) for r in found]
