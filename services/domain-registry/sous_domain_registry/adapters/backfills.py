"""PostgreSQL read model of backfills and their partitions."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sous_common.db import AnyConnection
from sous_contracts.backfills import BackfillRejected, BackfillUpdated, StartBackfill

_COLUMNS = (
    "backfill_id, domain, recipe, variation, kitchen, range, concurrency, downstream, status,"
    " counts, reason, requested_by, created_at, updated_at"
)


async def requested(conn: AnyConnection, cmd: StartBackfill, kitchen: str | None) -> None:
    """Record a backfill asked for through the API, before the scheduler answers."""
    await conn.execute(
        "INSERT INTO backfills (backfill_id, domain, recipe, variation, kitchen, range,"
        " concurrency, downstream, status, requested_by)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, 'requested', $9)"
        " ON CONFLICT (backfill_id) DO NOTHING",
        cmd.backfill_id,
        cmd.domain,
        cmd.recipe,
        cmd.variation,
        kitchen,
        cmd.range.model_dump_json(),
        cmd.concurrency,
        cmd.downstream,
        cmd.principal,
    )


async def updated(conn: AnyConnection, event: BackfillUpdated) -> None:
    """Fold a BackfillUpdated in: the whole counts, and the partitions it names."""
    await conn.execute(
        "INSERT INTO backfills (backfill_id, domain, recipe, variation, kitchen, range,"
        " concurrency, downstream, status, counts, reason, requested_by)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10::jsonb, $11, $12)"
        " ON CONFLICT (backfill_id) DO UPDATE SET variation = $4, kitchen = $5, status = $9,"
        " counts = $10::jsonb, reason = $11, updated_at = now()",
        event.backfill_id,
        event.domain,
        event.recipe,
        event.variation,
        event.kitchen,
        event.range.model_dump_json(),
        event.concurrency,
        event.downstream,
        event.status.value,
        event.counts.model_dump_json(),
        event.reason,
        event.principal,
    )
    if event.partitions:
        await conn.execute(
            "INSERT INTO backfill_partitions (backfill_id, key, state, order_run_id, attempt,"
            " reason) SELECT $1, p.key, p.state, p.run, p.attempt, p.reason"
            " FROM unnest($2::text[], $3::text[], $4::uuid[], $5::int[], $6::text[])"
            " AS p(key, state, run, attempt, reason)"
            " ON CONFLICT (backfill_id, key) DO UPDATE SET state = excluded.state,"
            " order_run_id = excluded.order_run_id, attempt = excluded.attempt,"
            " reason = excluded.reason",
            event.backfill_id,
            [p.key for p in event.partitions],
            [p.state.value for p in event.partitions],
            [p.order_run_id for p in event.partitions],
            [p.attempt for p in event.partitions],
            [p.reason for p in event.partitions],
        )


async def rejected(conn: AnyConnection, event: BackfillRejected) -> None:
    """A refused StartBackfill marks its backfill rejected; other refusals change nothing."""
    if event.command == "StartBackfill":
        await conn.execute(
            "UPDATE backfills SET status = 'rejected', reason = $2, updated_at = now()"
            " WHERE backfill_id = $1 AND status = 'requested'",
            event.backfill_id,
            event.reason,
        )


def _row(row: Any) -> dict[str, Any]:
    found = dict(row)
    found["range"] = json.loads(found["range"])
    found["counts"] = json.loads(found["counts"])
    return found


async def get(conn: AnyConnection, backfill_id: uuid.UUID) -> dict[str, Any] | None:
    """One backfill with the partitions the scheduler has named, in key order."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM backfills WHERE backfill_id = $1", backfill_id
    )
    if row is None:
        return None
    found = _row(row)
    parts = await conn.fetch(
        "SELECT key, state, order_run_id, attempt, reason FROM backfill_partitions"
        " WHERE backfill_id = $1 ORDER BY key",
        backfill_id,
    )
    found["partitions"] = [dict(p) for p in parts]
    return found


async def list_backfills(
    conn: AnyConnection, domains: list[str], limit: int
) -> list[dict[str, Any]]:
    """Latest backfills of these domains, newest first."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM backfills WHERE domain = ANY($1::text[])"
        " ORDER BY created_at DESC LIMIT $2",
        domains,
        limit,
    )
    return [_row(r) for r in rows]
