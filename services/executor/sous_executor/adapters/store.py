"""The attempts table: taking an attempt once, recording how it ended, marking the lost."""

from __future__ import annotations

import uuid

from sous_common.db import AnyConnection
from sous_contracts.steps import ExecuteStep


async def take(conn: AnyConnection, command: ExecuteStep, worker_id: str) -> bool:
    """Record (step_run_id, attempt) as taken by this worker; False when taken before."""
    inserted = await conn.fetchval(
        "INSERT INTO attempts (step_run_id, attempt, order_run_id, step, worker_id, message_id)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING true",
        command.step_run_id,
        command.attempt,
        command.order_run_id,
        command.step,
        worker_id,
        command.message_id,
    )
    return bool(inserted)


async def finish(conn: AnyConnection, step_run_id: uuid.UUID, attempt: int, status: str) -> None:
    """Record how an attempt ended."""
    await conn.execute(
        "UPDATE attempts SET status = $3, finished_at = now()"
        " WHERE step_run_id = $1 AND attempt = $2",
        step_run_id,
        attempt,
        status,
    )


async def running_owners(conn: AnyConnection) -> list[str]:
    """Replica ids that own attempts recorded as still running."""
    rows = await conn.fetch("SELECT DISTINCT worker_id FROM attempts WHERE status = 'running'")
    return [r["worker_id"] for r in rows]


async def mark_lost(conn: AnyConnection, worker_ids: list[str]) -> int:
    """Record the running attempts of replicas known dead as `lost`; return how many."""
    marked = await conn.fetchval(
        "WITH lost AS (UPDATE attempts SET status = 'lost', finished_at = now()"
        " WHERE status = 'running' AND worker_id = ANY($1::text[]) RETURNING 1)"
        " SELECT count(*) FROM lost",
        worker_ids,
    )
    return int(marked)
