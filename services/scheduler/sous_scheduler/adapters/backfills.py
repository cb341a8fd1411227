"""PostgreSQL access of backfills: the backfill row (locked while it changes) and partitions."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from sous_common.db import AnyConnection
from sous_contracts.backfills import (
    BackfillCounts,
    BackfillStatus,
    PartitionState,
    PartitionUpdate,
    PartitionValue,
    StartBackfill,
    partition_key,
)
from sous_scheduler.domain.backfills import counts_of


@dataclass(frozen=True)
class Backfill:
    """A backfill as stored: the accepted command, where it runs, and whether it was cancelled."""

    command: StartBackfill
    variation: str
    kitchen: str
    status: BackfillStatus
    cancelled: str | None

    @property
    def id(self) -> uuid.UUID:
        """The backfill id."""
        return self.command.backfill_id


@dataclass(frozen=True)
class Waiting:
    """A partition about to start."""

    key: str
    value: PartitionValue
    attempt: int


async def insert(
    conn: AnyConnection,
    cmd: StartBackfill,
    variation: str,
    kitchen: str,
    values: list[PartitionValue],
) -> bool:
    """Record a new backfill with its waiting partitions; False when its id exists already."""
    inserted = await conn.fetchval(
        "INSERT INTO backfills (id, domain, recipe, variation, kitchen, command, concurrency,"
        " status) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, 'running')"
        " ON CONFLICT DO NOTHING RETURNING true",
        cmd.backfill_id,
        cmd.domain,
        cmd.recipe,
        variation,
        kitchen,
        cmd.model_dump_json(),
        cmd.concurrency,
    )
    if not inserted:
        return False
    await conn.execute(
        "INSERT INTO backfill_partitions (backfill_id, position, key, value, state)"
        " SELECT $1, p.position, p.key, p.value, 'waiting'"
        " FROM unnest($2::int[], $3::text[], $4::jsonb[]) AS p(position, key, value)",
        cmd.backfill_id,
        list(range(len(values))),
        [partition_key(v) for v in values],
        [json.dumps(v) for v in values],
    )
    return True


async def for_update(conn: AnyConnection, backfill_id: uuid.UUID) -> Backfill | None:
    """Lock a backfill's row for this transaction (one start or end at a time) and return it."""
    row = await conn.fetchrow(
        "SELECT command, variation, kitchen, status, cancelled FROM backfills"
        " WHERE id = $1 FOR UPDATE",
        backfill_id,
    )
    if row is None:
        return None
    return Backfill(
        StartBackfill.model_validate_json(row["command"]),
        row["variation"],
        row["kitchen"],
        BackfillStatus(row["status"]),
        row["cancelled"],
    )


async def counts(conn: AnyConnection, backfill_id: uuid.UUID) -> BackfillCounts:
    """Partitions of a backfill by state."""
    rows = await conn.fetch(
        "SELECT state, count(*) AS n FROM backfill_partitions WHERE backfill_id = $1"
        " GROUP BY state",
        backfill_id,
    )
    return counts_of({PartitionState(r["state"]): r["n"] for r in rows})


async def first_waiting(conn: AnyConnection, backfill_id: uuid.UUID, limit: int) -> list[Waiting]:
    """The first `limit` waiting partitions, in range order."""
    rows = await conn.fetch(
        "SELECT key, value, attempt FROM backfill_partitions"
        " WHERE backfill_id = $1 AND state = 'waiting' ORDER BY position LIMIT $2",
        backfill_id,
        limit,
    )
    return [Waiting(r["key"], json.loads(r["value"]), r["attempt"]) for r in rows]


async def mark_running(
    conn: AnyConnection, backfill_id: uuid.UUID, key: str, attempt: int, order_run_id: uuid.UUID
) -> None:
    """A partition's attempt started as this run."""
    await conn.execute(
        "UPDATE backfill_partitions SET state = 'running', attempt = $3, order_run_id = $4,"
        " reason = NULL WHERE backfill_id = $1 AND key = $2",
        backfill_id,
        key,
        attempt,
        order_run_id,
    )


async def backfills_of_runs(
    conn: AnyConnection, order_run_ids: list[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """The backfill of each of these runs that is a partition's current attempt."""
    rows = await conn.fetch(
        "SELECT order_run_id, backfill_id FROM backfill_partitions"
        " WHERE order_run_id = ANY($1::uuid[])",
        order_run_ids,
    )
    return {r["order_run_id"]: r["backfill_id"] for r in rows}


async def run_ended(
    conn: AnyConnection, order_run_id: uuid.UUID, state: PartitionState, reason: str | None
) -> PartitionUpdate | None:
    """Record the end of a partition's running attempt; None when it was not running."""
    row = await conn.fetchrow(
        "UPDATE backfill_partitions SET state = $2, reason = $3"
        " WHERE order_run_id = $1 AND state = 'running' RETURNING key, attempt",
        order_run_id,
        state.value,
        reason,
    )
    if row is None:
        return None
    return PartitionUpdate(
        key=row["key"],
        state=state,
        order_run_id=order_run_id,
        attempt=row["attempt"],
        reason=reason,
    )


async def move(
    conn: AnyConnection,
    backfill_id: uuid.UUID,
    old: PartitionState,
    new: PartitionState,
    reason: str | None,
) -> list[PartitionUpdate]:
    """Move every partition in state `old` to `new` (cancel waiting ones, retry failed ones)."""
    rows = await conn.fetch(
        "UPDATE backfill_partitions SET state = $3, reason = $4"
        " WHERE backfill_id = $1 AND state = $2 RETURNING key, attempt, order_run_id",
        backfill_id,
        old.value,
        new.value,
        reason,
    )
    return [
        PartitionUpdate(
            key=r["key"],
            state=new,
            order_run_id=r["order_run_id"],
            attempt=r["attempt"],
            reason=reason,
        )
        for r in rows
    ]


async def running_runs(conn: AnyConnection, backfill_id: uuid.UUID) -> list[uuid.UUID]:
    """Runs of a backfill's running partitions."""
    rows = await conn.fetch(
        "SELECT order_run_id FROM backfill_partitions"
        " WHERE backfill_id = $1 AND state = 'running' ORDER BY position",
        backfill_id,
    )
    return [r["order_run_id"] for r in rows]


async def save(
    conn: AnyConnection, backfill_id: uuid.UUID, status: BackfillStatus, cancelled: str | None
) -> None:
    """Store a backfill's status (and why it was cancelled)."""
    await conn.execute(
        "UPDATE backfills SET status = $2, cancelled = $3, updated_at = now() WHERE id = $1",
        backfill_id,
        status.value,
        cancelled,
    )
