"""PostgreSQL access of the scheduler: runs, timers and read marks, and the one store.

The module itself is the scheduler's `store.Store` in production: the registry view, trigger
state and cron fires live in modules beside it and are re-exported here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sous_common import db, metrics, outbox
from sous_common.db import AnyConnection
from sous_common.inbox import claim, claim_many
from sous_contracts.specs import RecipeSpec
from sous_scheduler.adapters.registry_view import (
    catalog,
    claim_and_look,
    entities,
    kitchens,
    recipe_from,
    recipe_versions,
    registry_generation,
    upsert_entity,
)
from sous_scheduler.adapters.schedule_rows import claim_fire, last_fire, record_fires
from sous_scheduler.adapters.state_cache import Entry, StateCache
from sous_scheduler.adapters.trigger_rows import (
    claim_expired_window,
    clear_join,
    held_for_debounce,
    hold_for_debounce,
    join_arrived,
    join_window,
    record_firing,
    refuse_firing,
    release_debounced,
    save_join_window,
)
from sous_scheduler.domain.events import ClearTimer, SetTimer, TimerKind
from sous_scheduler.domain.state import RunState

# The calls of the store: this module's own, the inbox's and those of the modules beside it.
__all__ = [
    "apply_all_timers",
    "apply_timers",
    "apply_timers_at_commit",
    "cached_runs",
    "catalog",
    "claim",
    "claim_all",
    "claim_and_lock",
    "claim_and_look",
    "claim_due_timer",
    "claim_expired_window",
    "claim_fire",
    "claim_many",
    "clear_join",
    "count_open_runs",
    "entities",
    "expect_marks",
    "extend_leases",
    "held_for_debounce",
    "hold_for_debounce",
    "insert_run",
    "join_arrived",
    "join_window",
    "kitchens",
    "last_fire",
    "lock",
    "lock_and_count",
    "oldest_open_runs",
    "recipe_from",
    "recipe_versions",
    "record_fires",
    "record_firing",
    "refuse_firing",
    "registry_generation",
    "release_debounced",
    "run_for_update",
    "run_of_key",
    "runs_for_update",
    "save_join_window",
    "save_marks",
    "save_run",
    "save_runs",
    "save_runs_as_of",
    "timers_due",
    "upsert_entity",
]

STATES = StateCache()
"""What this process last wrote or read of each run (see `state_cache`)."""


async def insert_run(
    conn: AnyConnection, state: RunState, recipe: RecipeSpec, idempotency_key: str | None
) -> bool:
    """Insert a new run; False when its id, or its key in (domain, recipe, kitchen), exists."""
    version = await conn.fetchval(
        "INSERT INTO runs (id, domain, recipe, variation, kitchen, phase, state, recipe_spec,"
        " idempotency_key, parent_id) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9,"
        " $10) ON CONFLICT DO NOTHING RETURNING xmin",
        state.order_run_id,
        state.domain,
        state.recipe,
        state.variation,
        state.kitchen,
        state.phase.value,
        state.model_dump_json(),
        recipe.model_dump_json(by_alias=True),
        idempotency_key,
        state.parent_order_run_id,
    )
    if version is None:
        return False
    STATES.put(version, state, recipe)
    return True


async def run_of_key(
    conn: AnyConnection, domain: str, recipe: str, kitchen: str, key: str
) -> tuple[uuid.UUID, str] | None:
    """The run (id, phase) an idempotency key started in (domain, recipe, kitchen)."""
    row = await conn.fetchrow(
        "SELECT id, phase FROM runs WHERE domain = $1 AND recipe = $2 AND kitchen = $3"
        " AND idempotency_key = $4",
        domain,
        recipe,
        kitchen,
        key,
    )
    return (row["id"], row["phase"]) if row is not None else None


async def run_for_update(
    conn: AnyConnection, order_run_id: uuid.UUID
) -> tuple[RunState, RecipeSpec] | None:
    """Lock a run's row for this transaction and return its state and recipe."""
    return (await runs_for_update(conn, [order_run_id])).get(order_run_id)


async def runs_for_update(
    conn: AnyConnection, order_run_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[RunState, RecipeSpec]]:
    """Lock several runs' rows in one round trip, in id order (two batches never deadlock)."""
    # The state and recipe travel only when the row is not the version this process knows.
    known = STATES.known(order_run_ids)
    rows = await conn.fetch(
        "SELECT r.id, r.xmin AS version, CASE WHEN r.xmin = c.version THEN NULL ELSE r.state"
        " END AS state, CASE WHEN r.xmin = c.version THEN NULL ELSE r.recipe_spec END AS recipe"
        " FROM runs r LEFT JOIN unnest($2::uuid[], $3::xid[]) AS c(id, version) ON c.id = r.id"
        " WHERE r.id = ANY($1::uuid[]) ORDER BY r.id FOR UPDATE OF r",
        order_run_ids,
        list(known),
        [version for version, _, _ in known.values()],
    )
    return _loaded(rows, known)


async def claim_and_lock(
    conn: AnyConnection, consumer: str, messages: list[tuple[uuid.UUID, uuid.UUID | None]]
) -> tuple[set[uuid.UUID], dict[uuid.UUID, tuple[RunState, RecipeSpec]]]:
    """Claim messages in the inbox and lock the runs of the fresh ones, in one round trip.

    `messages` are (message id, run id or None). Returns the fresh message ids and the
    fresh messages' runs that exist, locked in id order like `runs_for_update`.
    """
    ids = [m for m, _ in messages]
    known = STATES.known(sorted({r for _, r in messages if r is not None}))
    rows = await conn.fetch(
        "WITH claimed AS (INSERT INTO inbox (consumer, message_id) SELECT $1, unnest($2::uuid[])"
        " ON CONFLICT DO NOTHING RETURNING message_id),"
        " locked AS (SELECT r.id, r.xmin AS version,"
        " CASE WHEN r.xmin = c.version THEN NULL ELSE r.state END AS state,"
        " CASE WHEN r.xmin = c.version THEN NULL ELSE r.recipe_spec END AS recipe"
        " FROM runs r LEFT JOIN unnest($4::uuid[], $5::xid[]) AS c(id, version) ON c.id = r.id"
        " WHERE r.id IN (SELECT u.run FROM unnest($2::uuid[], $3::uuid[]) AS u(message, run)"
        " WHERE u.message IN (SELECT message_id FROM claimed))"
        " ORDER BY r.id FOR UPDATE OF r)"
        " SELECT NULL::uuid AS id, NULL::xid AS version, NULL::jsonb AS state,"
        " NULL::jsonb AS recipe, (SELECT array_agg(message_id) FROM claimed) AS fresh"
        " UNION ALL SELECT id, version, state, recipe, NULL FROM locked",
        consumer,
        ids,
        [r for _, r in messages],
        list(known),
        [version for version, _, _ in known.values()],
    )
    fresh = set(rows[0]["fresh"] or ())
    metrics.duplicates(consumer, len(set(ids)) - len(fresh))
    return fresh, _loaded(rows[1:], known)


def _loaded(
    rows: list[Any], known: dict[uuid.UUID, Entry]
) -> dict[uuid.UUID, tuple[RunState, RecipeSpec]]:
    """The runs of locked rows: parsed when their version is not the one known here."""
    found: dict[uuid.UUID, tuple[RunState, RecipeSpec]] = {}
    for r in rows:
        if r["state"] is None:  # the very version known here
            _, state, recipe = known[r["id"]]
        else:
            state, recipe = RunState.load(r["state"]), recipe_from(r["recipe"])
            STATES.put(r["version"], state, recipe)
        found[r["id"]] = (state, recipe)
    return found


async def save_run(conn: AnyConnection, state: RunState) -> None:
    """Store a run's new state."""
    await save_runs(conn, [state])


async def save_runs(
    conn: AnyConnection,
    states: list[RunState],
    timers: dict[uuid.UUID, list[SetTimer | ClearTimer]] | None = None,
) -> None:
    """Store several runs' new states and set or clear their timers, in one round trip.

    Per run, the last change to each timer wins.
    """
    sets, clears = _final_timers(timers or {})
    if not states and not sets and not clears:
        return
    rows = await conn.fetch(
        "WITH saved AS (UPDATE runs r SET phase = s.phase, state = s.state, updated_at = now()"
        " FROM unnest($1::uuid[], $2::text[], $3::jsonb[]) AS s(id, phase, state)"
        " WHERE r.id = s.id RETURNING r.id, r.xmin AS version),"
        f" cleared AS ({_CLEAR_TIMERS.format(4, 5, 6)}),"
        f" timed AS ({_SET_TIMERS.format(7, 8, 9, 10, 11)})"
        " SELECT id, version FROM saved",
        [s.order_run_id for s in states],
        [s.phase.value for s in states],
        [s.model_dump_json() for s in states],
        *_clear_columns(clears),
        *_set_columns(sets),
    )
    by_id = {s.order_run_id: s for s in states}
    for r in rows:
        if (recipe := STATES.recipe(r["id"])) is not None:
            STATES.put(r["version"], by_id[r["id"]], recipe)


def cached_runs(order_run_ids: list[uuid.UUID]) -> Mapping[uuid.UUID, Entry]:
    """The runs among `order_run_ids` this process knows at a row version, without a read."""
    return STATES.known(order_run_ids)


async def claim_all(conn: AnyConnection, consumer: str, message_ids: list[uuid.UUID]) -> None:
    """In an `at_once` block: claim messages that must all be fresh, or write nothing."""
    await outbox.expecting(
        conn,
        "INSERT INTO inbox (consumer, message_id) SELECT $1, unnest($2::uuid[])"
        " ON CONFLICT DO NOTHING RETURNING message_id",
        consumer,
        message_ids,
        rows=len(message_ids),
    )


async def save_runs_as_of(
    conn: AnyConnection,
    states: list[tuple[Any, RunState]],
    timers: dict[uuid.UUID, list[SetTimer | ClearTimer]],
) -> None:
    """In an `at_once` block: `save_runs`, if each run is still at its row version.

    `states` are (the version the new state was decided on, the new state). A run written
    since (by another replica, or a rolled-back save) undoes the whole statement.
    """
    by_id = {s.order_run_id: s for _, s in states}

    def saved(rows: list[dict[str, object]]) -> None:
        for r in rows:
            run_id = uuid.UUID(str(r["id"]))
            if (recipe := STATES.recipe(run_id)) is not None:
                STATES.put(int(str(r["version"])), by_id[run_id], recipe)

    await outbox.expecting(
        conn,
        "UPDATE runs r SET phase = s.phase, state = s.state, updated_at = now()"
        " FROM unnest($1::uuid[], $2::xid[], $3::text[], $4::jsonb[])"
        " AS s(id, version, phase, state)"
        " WHERE r.id = s.id AND r.xmin = s.version RETURNING r.id, r.xmin AS version",
        [s.order_run_id for _, s in states],
        [version for version, _ in states],
        [s.phase.value for _, s in states],
        [s.model_dump_json() for _, s in states],
        rows=len(states),
        then=saved,
    )
    await apply_timers_at_commit(conn, timers)


async def lock(conn: AnyConnection, key: str) -> None:
    """Take a transaction-scoped lock on a name within this schema.

    Advisory locks are the whole database's: another schema's scheduler has names of its own.
    """
    await db.lock(conn, key)


async def lock_and_count(
    conn: AnyConnection,
    keys: list[str],
    variations: list[tuple[str, str, str]],
    besides: list[uuid.UUID | None],
) -> list[tuple[int, int]]:
    """Take the admission locks `keys` in their order, then count each variation's runs.

    One round trip: the i-th row holds the running and queued runs of `variations[i]`
    (`besides[i]`, the run being admitted, not counted). The counts see every admission
    made under one of the locks before it was taken here (`locked_open_runs` counts on a
    snapshot taken after the locks are held).
    """
    if not keys:
        return []
    rows = await conn.fetch(
        "SELECT running, queued FROM locked_open_runs($1::text[], $2::text[], $3::text[],"
        " $4::text[], $5::uuid[])",
        keys,
        [d for d, _, _ in variations],
        [r for _, r, _ in variations],
        [v for _, _, v in variations],
        besides,
    )
    return [(row["running"], row["queued"]) for row in rows]


async def count_open_runs(
    conn: AnyConnection, domain: str, recipe: str, variation: str, besides: uuid.UUID | None
) -> tuple[int, int]:
    """Count a variation's running and queued runs, `besides` (the run being admitted) not."""
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE phase = 'running') AS running,"
        " count(*) FILTER (WHERE phase = 'queued' AND id IS DISTINCT FROM $4) AS queued"
        " FROM runs WHERE domain = $1 AND recipe = $2 AND variation = $3"
        " AND phase IN ('queued', 'running')",
        domain,
        recipe,
        variation,
        besides,
    )
    assert row is not None
    return row["running"], row["queued"]


async def oldest_open_runs(
    conn: AnyConnection,
    domain: str,
    recipe: str,
    variation: str,
    phase: str,
    limit: int,
    besides: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """The `limit` oldest runs of a variation in one phase, `besides` not, oldest first."""
    if limit <= 0:
        return []
    rows = await conn.fetch(
        "SELECT id FROM runs WHERE domain = $1 AND recipe = $2 AND variation = $3"
        " AND phase = $4 AND phase IN ('queued', 'running') AND id IS DISTINCT FROM $5"
        " ORDER BY created_at, id LIMIT $6",
        domain,
        recipe,
        variation,
        phase,
        besides,
        limit,
    )
    return [r["id"] for r in rows]


async def apply_timers(
    conn: AnyConnection, order_run_id: uuid.UUID, ops: list[SetTimer | ClearTimer]
) -> None:
    """Set and clear a run's timers; the last change to each timer wins."""
    await apply_all_timers(conn, {order_run_id: ops})


async def apply_all_timers(
    conn: AnyConnection, ops: dict[uuid.UUID, list[SetTimer | ClearTimer]]
) -> None:
    """Set and clear the timers of several runs in at most two statements.

    Per run, the last change to each timer wins.
    """
    sets, clears = _final_timers(ops)
    if clears:
        await conn.execute(_CLEAR_TIMERS.format(1, 2, 3), *_clear_columns(clears))
    if sets:
        await conn.execute(_SET_TIMERS.format(1, 2, 3, 4, 5), *_set_columns(sets))


async def apply_timers_at_commit(
    conn: AnyConnection, ops: dict[uuid.UUID, list[SetTimer | ClearTimer]]
) -> None:
    """`apply_all_timers` just before COMMIT, with the outbox rows (`outbox.at_commit`).

    For the timers a transaction changes last: nothing in it reads them afterwards.
    """
    sets, clears = _final_timers(ops)
    if clears:
        await outbox.at_commit(conn, _CLEAR_TIMERS.format(1, 2, 3), *_clear_columns(clears))
    if sets:
        await outbox.at_commit(conn, _SET_TIMERS.format(1, 2, 3, 4, 5), *_set_columns(sets))


TimerKey = tuple[uuid.UUID, str, str]
"""(run, kind, step or "") of a timer: its row's key."""

_CLEAR_TIMERS = (
    "DELETE FROM timers t USING unnest(${}::uuid[], ${}::text[], ${}::text[])"
    " AS c(order_run_id, kind, step)"
    " WHERE t.order_run_id = c.order_run_id AND t.kind = c.kind AND t.step = c.step"
)
_SET_TIMERS = (
    "INSERT INTO timers (order_run_id, kind, step, attempt, due_at) SELECT * FROM"
    " unnest(${}::uuid[], ${}::text[], ${}::text[], ${}::int[], ${}::timestamptz[])"
    " ON CONFLICT (order_run_id, kind, step)"
    " DO UPDATE SET attempt = EXCLUDED.attempt, due_at = EXCLUDED.due_at"
)
"""The timer statements, with their parameters' numbers to fill in (`str.format`)."""


def _final_timers(
    ops: dict[uuid.UUID, list[SetTimer | ClearTimer]],
) -> tuple[list[tuple[TimerKey, SetTimer]], list[TimerKey]]:
    """The timers to set and to clear: per run, the last change to each timer wins.

    A key is in one list or the other, never both, so one statement may do both.
    """
    final: dict[TimerKey, SetTimer | ClearTimer] = {}
    for run_id, changes in ops.items():
        for op in changes:
            final[(run_id, op.kind, op.step or "")] = op
    sets = [(key, op) for key, op in final.items() if isinstance(op, SetTimer)]
    clears = [key for key, op in final.items() if isinstance(op, ClearTimer)]
    return sets, clears


def _clear_columns(clears: list[TimerKey]) -> list[list[Any]]:
    return [[key[i] for key in clears] for i in range(3)]


def _set_columns(sets: list[tuple[TimerKey, SetTimer]]) -> list[list[Any]]:
    return [
        [key[0] for key, _ in sets],
        [key[1] for key, _ in sets],
        [key[2] for key, _ in sets],
        [op.attempt for _, op in sets],
        [op.due for _, op in sets],
    ]


async def timers_due(conn: AnyConnection, now: datetime) -> int:
    """How many timers are due at `now` (an index range scan on `timers_due`)."""
    due: int = await conn.fetchval("SELECT count(*) FROM timers WHERE due_at <= $1", now)
    return due


async def claim_due_timer(
    conn: AnyConnection, now: datetime
) -> tuple[uuid.UUID, TimerKind, str | None, int] | None:
    """Take one due timer (skipping ones other replicas hold) and delete it.

    A lease is due only once every partition of the step events is read past its deadline
    (DESIGN §5.10): the heartbeats that would renew it are then all handled.
    """
    row = await conn.fetchrow(
        "DELETE FROM timers WHERE ctid = (SELECT ctid FROM timers WHERE due_at <= $1"
        " AND (kind <> 'lease' OR due_at <="
        " (SELECT coalesce(min(read_through), '-infinity') FROM read_marks))"
        " ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
        " RETURNING order_run_id, kind, step, attempt",
        now,
    )
    if row is None:
        return None
    return row["order_run_id"], row["kind"], row["step"] or None, row["attempt"]


async def expect_marks(conn: AnyConnection, partitions: set[int]) -> None:
    """Make every partition count for leases, unread until its first mark is handled."""
    await conn.execute(
        "INSERT INTO read_marks (partition, read_through)"
        " SELECT unnest($1::int[]), '-infinity' ON CONFLICT DO NOTHING",
        sorted(partitions),
    )


async def save_marks(conn: AnyConnection, marks: dict[int, datetime]) -> dict[int, datetime]:
    """Record how far partitions of the step events are read (never backwards).

    Returns the marks the partitions had before, for those that had one.
    """
    if not marks:
        return {}
    rows = await conn.fetch(
        "WITH new AS (SELECT * FROM unnest($1::int[], $2::timestamptz[]) AS n(partition, at)),"
        " saved AS (INSERT INTO read_marks (partition, read_through) SELECT * FROM new"
        " ON CONFLICT (partition) DO UPDATE SET read_through = greatest(read_marks.read_through,"
        " excluded.read_through))"
        " SELECT r.partition, r.read_through FROM read_marks r JOIN new USING (partition)"
        " WHERE isfinite(r.read_through)",
        list(marks),
        list(marks.values()),
    )
    return {r["partition"]: r["read_through"] for r in rows}


async def extend_leases(conn: AnyConnection, since: datetime, until: datetime) -> int:
    """Move the leases due after `since` and before `until` to `until`; return how many."""
    done: str = await conn.execute(
        "UPDATE timers SET due_at = $2 WHERE kind = 'lease' AND due_at > $1 AND due_at < $2",
        since,
        until,
    )
    return int(done.split()[-1])
