"""PostgreSQL lineage of runs: edges upstream → downstream, walked by recursive queries."""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from sous_common.db import AnyConnection
from sous_contracts.runs import RunCause

Direction = Literal["up", "down"]

_WALK = {
    # Each walk keeps (edge, depth) pairs; UNION drops repeats, so a diamond is walked once
    # per depth and the depth bound ends every walk, cycles included.
    "down": (
        "WITH RECURSIVE walk(upstream, downstream, kind, trigger, depth) AS ("
        " SELECT upstream, downstream, kind, trigger, 1 FROM run_edges WHERE upstream = $1"
        " UNION SELECT e.upstream, e.downstream, e.kind, e.trigger, w.depth + 1"
        " FROM walk w JOIN run_edges e ON e.upstream = w.downstream WHERE w.depth < $2)"
    ),
    "up": (
        "WITH RECURSIVE walk(upstream, downstream, kind, trigger, depth) AS ("
        " SELECT upstream, downstream, kind, trigger, 1 FROM run_edges WHERE downstream = $1"
        " UNION SELECT e.upstream, e.downstream, e.kind, e.trigger, w.depth + 1"
        " FROM walk w JOIN run_edges e ON e.downstream = w.upstream WHERE w.depth < $2)"
    ),
}


async def add_edges(conn: AnyConnection, run_id: uuid.UUID, cause: RunCause) -> None:
    """Record the edges into a run that its cause names (its upstream runs, or its parent)."""
    if cause.upstream:
        await conn.executemany(
            "INSERT INTO run_edges (upstream, downstream, kind, trigger) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT DO NOTHING",
            [(up, run_id, kind, via) for up, kind, via in cause.upstream],
        )


async def walk(
    conn: AnyConnection, run_id: uuid.UUID, direction: Direction, depth: int, limit: int
) -> list[dict[str, Any]]:
    """Return the edges reached from a run (each with the depth it was first reached at).

    At most `limit` edges, nearest first.
    """
    rows = await conn.fetch(
        _WALK[direction] + " SELECT upstream, downstream, kind, trigger, min(depth) AS depth"
        " FROM walk GROUP BY upstream, downstream, kind, trigger ORDER BY depth LIMIT $3",
        run_id,
        depth,
        limit,
    )
    return [dict(r) for r in rows]


async def nodes(conn: AnyConnection, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """Return the runs of the read model among these ids, as lineage nodes."""
    rows = await conn.fetch(
        "SELECT order_run_id, domain, recipe, variation, kitchen, status, tests::text AS tests,"
        " cause::text AS cause, started_at, finished_at FROM runs"
        " WHERE order_run_id = ANY($1::uuid[])",
        run_ids,
    )
    out: dict[uuid.UUID, dict[str, Any]] = {}
    for r in rows:
        tests = json.loads(r["tests"])
        out[r["order_run_id"]] = {
            **dict(r),
            "tests": {
                "passed": tests.get("passed", 0),
                "failed": tests.get("failed", 0),
                "warnings": tests.get("warnings", 0),
            },
            "cause": json.loads(r["cause"]) if r["cause"] is not None else None,
        }
    return out


async def test_result(conn: AnyConnection, result_id: uuid.UUID) -> dict[str, Any] | None:
    """Return one test result (with its run's domain) by its message id."""
    row = await conn.fetchrow(
        "SELECT t.result_id, t.order_run_id, t.step, t.test, t.severity, t.status, t.message,"
        " r.domain FROM run_tests t JOIN runs r USING (order_run_id) WHERE t.result_id = $1",
        result_id,
    )
    return dict(row) if row is not None else None


async def datasets_written(conn: AnyConnection, run_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    """Return the datasets these runs wrote: what impact lists besides the runs.

    A step's declared (and reported) outputs, when the step ran (not skipped or cancelled
    before it started), plus the dataset refs a run published in its outputs.
    """
    rows = await conn.fetch(
        "SELECT r.order_run_id, r.domain, s.value->>'step' AS step, o.value AS uri"
        " FROM runs r, jsonb_array_elements(r.datasets) AS s(value),"
        " jsonb_array_elements_text(coalesce(s.value->'outputs', '[]'::jsonb)) AS o(value)"
        " WHERE r.order_run_id = ANY($1::uuid[])"
        " AND s.value->>'status' IN ('succeeded', 'failed', 'lost')"
        " UNION"
        " SELECT r.order_run_id, r.domain, NULL, d.value->>'uri' FROM runs r,"
        " jsonb_array_elements(coalesce(r.outputs->'datasets', '[]'::jsonb)) AS d(value)"
        " WHERE r.order_run_id = ANY($1::uuid[]) AND d.value->>'uri' IS NOT NULL"
        " ORDER BY 1, 4",
        run_ids,
    )
    return [
        {
            "order_run_id": r["order_run_id"],
            "domain": r["domain"],
            "step": r["step"],
            "uri": r["uri"],
        }
        for r in rows
    ]
