"""The read model's writes for backfills and expired join windows (from the run topic).

A BackfillUpdated carries whole counts and only the partitions that changed; updates of one
backfill share its key, so they arrive in order, and an older update never overwrites a newer
one (a replay from the topic's history changes nothing).
"""

from __future__ import annotations

import json
from typing import Any

from sous_common.db import AnyConnection
from sous_contracts.backfills import BackfillRejected, BackfillUpdated
from sous_contracts.runs import JoinWindowExpired

Change = dict[str, Any]


def _counts(e: BackfillUpdated) -> dict[str, int]:
    c = e.counts
    return {
        "total": c.total,
        "done": c.done,
        "failed": c.failed,
        "running": c.running,
        "waiting": c.waiting,
        "cancelled": c.cancelled,
    }


async def backfill_updated(conn: AnyConnection, e: BackfillUpdated) -> Change:
    """Keep a backfill's newest status and counts, and each named partition's newest state."""
    counts = _counts(e)
    await conn.execute(
        """
        INSERT INTO backfills AS b (backfill_id, domain, recipe, variation, kitchen, range,
            concurrency, downstream, status, total, done, failed, running, waiting, cancelled,
            principal, reason, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
            $18, $18)
        ON CONFLICT (backfill_id) DO UPDATE SET status = EXCLUDED.status,
            total = EXCLUDED.total, done = EXCLUDED.done, failed = EXCLUDED.failed,
            running = EXCLUDED.running, waiting = EXCLUDED.waiting,
            cancelled = EXCLUDED.cancelled, reason = coalesce(EXCLUDED.reason, b.reason),
            principal = coalesce(b.principal, EXCLUDED.principal),
            created_at = least(b.created_at, EXCLUDED.created_at),
            updated_at = EXCLUDED.updated_at
        WHERE b.updated_at <= EXCLUDED.updated_at
        """,
        e.backfill_id,
        e.domain,
        e.recipe,
        e.variation,
        e.kitchen,
        e.range.text() + (f" step {e.range.step}" if e.range.step else ""),
        e.concurrency,
        e.downstream,
        str(e.status),
        *counts.values(),
        e.principal,
        e.reason,
        e.occurred_at,
    )
    # A retry starts a new attempt; a late update of an older attempt never hides it.
    await conn.executemany(
        """
        INSERT INTO backfill_partitions AS p (backfill_id, key, state, attempt, order_run_id,
            reason) VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (backfill_id, key) DO UPDATE SET state = EXCLUDED.state,
            attempt = EXCLUDED.attempt,
            order_run_id = coalesce(EXCLUDED.order_run_id, p.order_run_id),
            reason = EXCLUDED.reason
        WHERE p.attempt <= EXCLUDED.attempt
        """,
        [
            (e.backfill_id, p.key, str(p.state), p.attempt, p.order_run_id, p.reason)
            for p in e.partitions
        ],
    )
    return {
        "kind": "backfill",
        "backfill_id": str(e.backfill_id),
        "domain": e.domain,
        "kitchen": e.kitchen,
        "status": str(e.status),
        "counts": counts,
    }


async def backfill_rejected(conn: AnyConnection, e: BackfillRejected) -> Change:
    """Record a refused StartBackfill as a rejected backfill; a refused Cancel or Retry on it."""
    if e.command == "StartBackfill":
        await conn.execute(
            "INSERT INTO backfills (backfill_id, domain, recipe, status, reason, created_at,"
            " updated_at) VALUES ($1, $2, $3, 'rejected', $4, $5, $5) ON CONFLICT DO NOTHING",
            e.backfill_id,
            e.domain or "?",
            e.recipe or "?",
            e.reason,
            e.occurred_at,
        )
    else:
        await conn.execute(
            "UPDATE backfills SET refused = $2 WHERE backfill_id = $1",
            e.backfill_id,
            f"{e.command} refused: {e.reason}",
        )
    domain = await conn.fetchval(
        "SELECT domain FROM backfills WHERE backfill_id = $1", e.backfill_id
    )
    return {
        "kind": "backfill",
        "backfill_id": str(e.backfill_id),
        "domain": domain or e.domain,
        "status": "rejected" if e.command == "StartBackfill" else None,
    }


async def join_expired(conn: AnyConnection, e: JoinWindowExpired) -> Change:
    """List an expired join window as a run of status `join-expired`, linked to what arrived."""
    cause = {
        "kind": "join-expired",
        "trigger": e.trigger_id,
        "key": e.key,
        "needed": e.needed,
        "upstreams": [u.model_dump(mode="json") for u in e.upstreams],
    }
    await conn.execute(
        """
        INSERT INTO runs (order_run_id, domain, recipe, kitchen, status, reason, params, cause,
            correlation_id, started_at, finished_at)
        VALUES ($1, $2, $3, $4, 'join-expired', $5, $6::jsonb, $7::jsonb, $8, $9, $10)
        ON CONFLICT (order_run_id) DO NOTHING
        """,
        e.order_run_id,
        e.domain,
        e.recipe,
        e.kitchen,
        e.describe(),
        json.dumps({"key": e.key}),
        json.dumps(cause),
        e.correlation_id,
        e.opened_at,
        e.occurred_at,
    )
    await conn.executemany(
        "INSERT INTO run_edges (upstream, downstream, kind, via) VALUES ($1, $2, 'join', $3)"
        " ON CONFLICT DO NOTHING",
        [(u.order_run_id, e.order_run_id, e.trigger_id) for u in e.upstreams if u.order_run_id],
    )
    return {
        "kind": "run",
        "order_run_id": str(e.order_run_id),
        "domain": e.domain,
        "recipe": e.recipe,
        "kitchen": e.kitchen,
        "status": "join-expired",
    }
