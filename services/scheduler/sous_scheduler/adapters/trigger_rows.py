"""PostgreSQL access of the scheduler's trigger state: debounces, joins, windows, firings."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sous_common.db import AnyConnection
from sous_contracts.runs import DomainRunCompleted
from sous_scheduler.domain.triggers import Arrival, JoinWindow


async def hold_for_debounce(
    conn: AnyConnection, trigger_id: str, kitchen: str, event: DomainRunCompleted, now: datetime
) -> None:
    """Keep the latest completion for a coalescing trigger until its debounce window ends."""
    await conn.execute(
        "INSERT INTO trigger_joins (trigger_id, kitchen, pattern, message_id, arrived_at, event)"
        " VALUES ($1, $2, -1, $3, $4, $5::jsonb) ON CONFLICT (trigger_id, kitchen, pattern)"
        " DO UPDATE SET message_id = $3, arrived_at = $4, event = $5::jsonb",
        trigger_id,
        kitchen,
        event.message_id,
        now,
        event.model_dump_json(),
    )


async def join_arrived(
    conn: AnyConnection,
    trigger_id: str,
    kitchen: str,
    patterns: list[int],
    event: DomainRunCompleted,
    now: datetime,
    cutoff: datetime,
) -> int:
    """Record a completion for a join's patterns and forget arrivals before `cutoff`.

    Returns how many of the join's patterns have arrived within its window.
    """
    await conn.execute(
        "INSERT INTO trigger_joins (trigger_id, kitchen, pattern, message_id, arrived_at, event)"
        " SELECT $1, $2, unnest($3::int[]), $4, $5, $6::jsonb"
        " ON CONFLICT (trigger_id, kitchen, pattern)"
        " DO UPDATE SET message_id = $4, arrived_at = $5, event = $6::jsonb",
        trigger_id,
        kitchen,
        patterns,
        event.message_id,
        now,
        event.model_dump_json(),
    )
    await conn.execute(
        "DELETE FROM trigger_joins WHERE trigger_id = $1 AND kitchen = $2 AND pattern >= 0"
        " AND arrived_at < $3",
        trigger_id,
        kitchen,
        cutoff,
    )
    present: int = await conn.fetchval(
        "SELECT count(*) FROM trigger_joins WHERE trigger_id = $1 AND kitchen = $2"
        " AND pattern >= 0",
        trigger_id,
        kitchen,
    )
    return present


async def clear_join(
    conn: AnyConnection, trigger_id: str, kitchen: str
) -> list[DomainRunCompleted]:
    """Forget a join's arrivals once it fired; return them (the upstream of the run it starts)."""
    rows = await conn.fetch(
        "DELETE FROM trigger_joins WHERE trigger_id = $1 AND kitchen = $2 AND pattern >= 0"
        " RETURNING arrived_at, event",
        trigger_id,
        kitchen,
    )
    ordered = sorted(rows, key=lambda r: r["arrived_at"])
    return [DomainRunCompleted.model_validate_json(r["event"]) for r in ordered]


async def record_firing(
    conn: AnyConnection,
    trigger_id: str,
    upstream: uuid.UUID,
    order_run_id: uuid.UUID | None,
    outcome: str,
) -> bool:
    """Record a trigger's answer to one upstream message; False when it answered before."""
    first = await conn.fetchval(
        "INSERT INTO trigger_firings (trigger_id, upstream_message_id, order_run_id, outcome)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
        trigger_id,
        upstream,
        order_run_id,
        outcome,
    )
    return bool(first)


async def refuse_firing(
    conn: AnyConnection, trigger_id: str, upstream: uuid.UUID, reason: str
) -> None:
    """Turn a recorded firing into a refusal (its run could not be made)."""
    await conn.execute(
        "UPDATE trigger_firings SET outcome = $3, order_run_id = NULL"
        " WHERE trigger_id = $1 AND upstream_message_id = $2",
        trigger_id,
        upstream,
        f"refused: {reason}",
    )


async def held_for_debounce(conn: AnyConnection) -> list[tuple[str, str, datetime, Any]]:
    """Completions held by coalescing triggers, locked (other replicas skip them)."""
    rows = await conn.fetch(
        "SELECT trigger_id, kitchen, arrived_at, event FROM trigger_joins"
        " WHERE pattern = -1 FOR UPDATE SKIP LOCKED"
    )
    return [
        (
            r["trigger_id"],
            r["kitchen"],
            r["arrived_at"],
            DomainRunCompleted.model_validate_json(r["event"]),
        )
        for r in rows
    ]


async def release_debounced(conn: AnyConnection, trigger_id: str, kitchen: str) -> None:
    """Forget a coalescing trigger's held completion once it fired."""
    await conn.execute(
        "DELETE FROM trigger_joins WHERE trigger_id = $1 AND kitchen = $2 AND pattern = -1",
        trigger_id,
        kitchen,
    )


def _window(row: Any) -> JoinWindow:
    arrivals = json.loads(row["arrivals"])
    return JoinWindow(
        window_id=row["window_id"],
        opened_at=row["opened_at"],
        deadline=row["deadline"],
        arrivals={
            int(i): Arrival(
                uuid.UUID(a["message_id"]),
                uuid.UUID(a["order_run_id"]) if a["order_run_id"] else None,
            )
            for i, a in arrivals.items()
        },
        fired=row["fired"],
    )


async def join_window(
    conn: AnyConnection, trigger_id: str, kitchen: str, key: str
) -> JoinWindow | None:
    """Lock and return one key's join window of a trigger (the caller holds the key's lock)."""
    row = await conn.fetchrow(
        "SELECT * FROM join_windows WHERE trigger_id = $1 AND kitchen = $2 AND key = $3 FOR UPDATE",
        trigger_id,
        kitchen,
        key,
    )
    return _window(row) if row is not None else None


async def save_join_window(
    conn: AnyConnection, trigger_id: str, kitchen: str, key: str, window: JoinWindow | None
) -> None:
    """Store a key's join window, or forget it (None)."""
    if window is None:
        await conn.execute(
            "DELETE FROM join_windows WHERE trigger_id = $1 AND kitchen = $2 AND key = $3",
            trigger_id,
            kitchen,
            key,
        )
        return
    arrivals = {
        str(i): {
            "message_id": str(a.message_id),
            "order_run_id": str(a.order_run_id) if a.order_run_id else None,
        }
        for i, a in window.arrivals.items()
    }
    await conn.execute(
        "INSERT INTO join_windows (trigger_id, kitchen, key, window_id, opened_at, deadline,"
        " arrivals, fired) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)"
        " ON CONFLICT (trigger_id, kitchen, key) DO UPDATE SET window_id = $4, opened_at = $5,"
        " deadline = $6, arrivals = $7::jsonb, fired = $8",
        trigger_id,
        kitchen,
        key,
        window.window_id,
        window.opened_at,
        window.deadline,
        json.dumps(arrivals),
        window.fired,
    )


async def claim_expired_window(
    conn: AnyConnection, now: datetime
) -> tuple[str, str, str, JoinWindow] | None:
    """Take one join window past its deadline (skipping ones others hold) and delete it."""
    row = await conn.fetchrow(
        "DELETE FROM join_windows WHERE ctid = (SELECT ctid FROM join_windows"
        " WHERE deadline <= $1 ORDER BY deadline LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *",
        now,
    )
    if row is None:
        return None
    return row["trigger_id"], row["kitchen"], row["key"], _window(row)
