"""PostgreSQL read model of monitor health: the latest check of each monitor."""

from __future__ import annotations

import json
from typing import Any

from sous_common.db import AnyConnection
from sous_contracts.tests import TestSuiteFinished


async def record(conn: AnyConnection, suite: TestSuiteFinished) -> None:
    """Keep a monitor's check when it is the latest of that monitor and kitchen."""
    await conn.execute(
        "INSERT INTO monitor_health (domain, monitor, kitchen, dataset, passed, summary,"
        " results, check_id, at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9)"
        " ON CONFLICT (domain, monitor, kitchen) DO UPDATE SET dataset = excluded.dataset,"
        " passed = excluded.passed, summary = excluded.summary, results = excluded.results,"
        " check_id = excluded.check_id, at = excluded.at WHERE monitor_health.at <= excluded.at",
        suite.domain,
        suite.monitor,
        suite.kitchen,
        suite.dataset or "",
        not suite.blocking,
        json.dumps(suite.summary.model_dump(mode="json")),
        json.dumps({k: v.value for k, v in suite.results.items()}),
        suite.suite_id,
        suite.occurred_at,
    )


async def of_dataset(
    conn: AnyConnection, *, domains: list[str], name: str, kitchen: str | None = None
) -> list[dict[str, Any]]:
    """The latest check of every monitor of a dataset, of these domains (in one kitchen)."""
    rows = await conn.fetch(
        "SELECT domain, monitor, kitchen, passed, summary, results, check_id, at"
        " FROM monitor_health WHERE dataset = $1 AND domain = ANY($2::text[])"
        " AND ($3::text IS NULL OR kitchen = $3) ORDER BY domain, monitor, kitchen",
        name,
        domains,
        kitchen,
    )
    return [
        {
            "domain": r["domain"],
            "monitor": r["monitor"],
            "kitchen": r["kitchen"],
            "passed": r["passed"],
            "summary": json.loads(r["summary"]),
            "results": json.loads(r["results"]),
            "last_check": str(r["check_id"]),
            "at": r["at"].isoformat(),
        }
        for r in rows
    ]
