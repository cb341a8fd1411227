"""PostgreSQL access of the scheduler's cron fires: one run per (schedule, fire time)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sous_common.db import AnyConnection


async def last_fire(conn: AnyConnection, schedule_id: str) -> datetime | None:
    """The latest fire time recorded for a schedule (None: never seen)."""
    last: datetime | None = await conn.fetchval(
        "SELECT max(fire_time) FROM cron_fires WHERE schedule_id = $1", schedule_id
    )
    return last


async def record_fires(conn: AnyConnection, schedule_id: str, times: list[datetime]) -> bool:
    """Record fire times that start no run; True when the last of them is new."""
    if not times:
        return False
    rows = await conn.fetch(
        "INSERT INTO cron_fires (schedule_id, fire_time) SELECT $1, unnest($2::timestamptz[])"
        " ON CONFLICT DO NOTHING RETURNING fire_time",
        schedule_id,
        times,
    )
    return any(r["fire_time"] == times[-1] for r in rows)


async def claim_fire(
    conn: AnyConnection, schedule_id: str, fire_time: datetime, order_run_id: uuid.UUID
) -> bool:
    """Record the run a fire time starts; False when another replica recorded it first."""
    first = await conn.fetchval(
        "INSERT INTO cron_fires (schedule_id, fire_time, order_run_id) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true",
        schedule_id,
        fire_time,
        order_run_id,
    )
    return bool(first)
