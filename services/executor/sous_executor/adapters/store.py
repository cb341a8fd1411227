"""The attempts table: taking an attempt once, recording how it ended, marking the lost."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sous_common.db import AnyConnection
from sous_contracts.steps import ExecuteStep


async def take(
    conn: AnyConnection, commands: Sequence[ExecuteStep], worker_id: str
) -> set[tuple[uuid.UUID, int]]:
    """Record each (step_run_id, attempt) as taken by this worker, in one statement.

    Returns the attempts taken now; the others were taken before (by any replica).
    """
    rows = await conn.fetch(
        "INSERT INTO attempts (step_run_id, attempt, order_run_id, step, worker_id, message_id)"
        " SELECT s, a, o, st, $5, m FROM unnest($1::uuid[], $2::int[], $3::uuid[], $4::text[],"
        " $6::uuid[]) AS t(s, a, o, st, m)"
        " ON CONFLICT DO NOTHING RETURNING step_run_id, attempt",
        [c.step_run_id for c in commands],
        [c.attempt for c in commands],
        [c.order_run_id for c in commands],
        [c.step for c in commands],
        worker_id,
        [c.message_id for c in commands],
    )
    return {(r["step_run_id"], r["attempt"]) for r in rows}


async def finish(conn: AnyConnection, ends: Sequence[tuple[uuid.UUID, int, str]]) -> None:
    """Record how attempts ended, each a (step_run_id, attempt, status), in one statement."""
    if not ends:
        return
    await conn.execute(
        "UPDATE attempts SET status = e.status, finished_at = now()"
        " FROM unnest($1::uuid[], $2::int[], $3::text[]) AS e(step_run_id, attempt, status)"
        " WHERE attempts.step_run_id = e.step_run_id AND attempts.attempt = e.attempt",
        [e[0] for e in ends],
        [e[1] for e in ends],
        [e[2] for e in ends],
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
