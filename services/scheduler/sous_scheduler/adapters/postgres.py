"""PostgreSQL access of the scheduler: runs, timers and the registry view.

The module itself is the scheduler's `store.Store` in production.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sous_common.db import AnyConnection
from sous_common.inbox import claim as claim  # the inbox, re-exported as part of the store
from sous_common.inbox import claim_many as claim_many
from sous_contracts.registry import RegistryEntityChanged
from sous_contracts.runs import DomainRunCompleted
from sous_contracts.specs import DomainSpec, KitchenSpec, RecipeSpec
from sous_scheduler.adapters.state_cache import StateCache
from sous_scheduler.domain.events import ClearTimer, SetTimer, TimerKind
from sous_scheduler.domain.plan import Catalog
from sous_scheduler.domain.state import RunState
from sous_scheduler.domain.triggers import Arrival, JoinWindow
from sous_scheduler.domain.versions import pick, run_kitchen

_RECIPES: dict[str, RecipeSpec] = {}
STATES = StateCache()
"""What this process last wrote or read of each run (see `state_cache`)."""


def recipe_from(spec: Any) -> RecipeSpec:
    """Parse a compiled recipe, caching by content (specs are immutable per version)."""
    text = spec if isinstance(spec, str) else json.dumps(spec, sort_keys=True)
    if (cached := _RECIPES.get(text)) is None:
        cached = RecipeSpec.model_validate_json(text)
        if len(_RECIPES) > 512:
            _RECIPES.clear()
        _RECIPES[text] = cached
    return cached


async def upsert_entity(conn: AnyConnection, change: RegistryEntityChanged) -> None:
    """Apply one changelog record to the registry view."""
    await conn.execute(
        "INSERT INTO registry (entity_id, kind, domain, name, version, spec, deleted, kitchen)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)"
        " ON CONFLICT (entity_id) DO UPDATE SET kind = $2, domain = $3, name = $4,"
        " version = $5, spec = $6::jsonb, deleted = $7, kitchen = $8, updated_at = now()",
        change.entity_id,
        change.kind.value,
        change.domain,
        change.name,
        change.version,
        json.dumps(change.spec),
        change.deleted,
        change.kitchen,
    )


async def entities(conn: AnyConnection, kind: str) -> list[Any]:
    """Return the live base entities of one kind (versions applied into kitchens left out)."""
    return list(
        await conn.fetch(
            "SELECT entity_id, domain, name, version, spec FROM registry"
            " WHERE kind = $1 AND NOT deleted AND kitchen IS NULL ORDER BY entity_id",
            kind,
        )
    )


async def recipe_versions(conn: AnyConnection) -> list[Any]:
    """Return every live version of every recipe: the base ones and those of kitchens."""
    return list(
        await conn.fetch(
            "SELECT entity_id, domain, name, version, spec, kitchen FROM registry"
            " WHERE kind = 'recipe' AND NOT deleted ORDER BY entity_id"
        )
    )


async def kitchens(conn: AnyConnection) -> dict[str, KitchenSpec]:
    """Return every live kitchen by name."""
    rows = await entities(conn, "kitchen")
    return {r["name"]: KitchenSpec.model_validate(json.loads(r["spec"])) for r in rows}


async def catalog(
    conn: AnyConnection,
    domain: str,
    recipe: str,
    *,
    kitchen: str | None = None,
    variation: str | None = None,
) -> Catalog:
    """Load what planning a run of domain/recipe needs.

    The recipe is the version of the run's kitchen (`kitchen`, else the variation's): the
    first kitchen from there up to the root with a version of its own, else the base one.
    """
    rows = await conn.fetch(
        "SELECT kind, name, domain, version, spec, kitchen FROM registry WHERE NOT deleted AND ("
        " (kind = 'recipe' AND domain = $1 AND name = $2) OR (kitchen IS NULL AND"
        " ((kind = 'domain' AND name = $1) OR kind = 'kitchen')))",
        domain,
        recipe,
    )
    found_domain = None
    recipes: dict[str | None, Any] = {}
    kitchens: dict[str, KitchenSpec] = {}
    for r in rows:
        spec = json.loads(r["spec"])
        if r["kind"] == "recipe":
            recipes[r["kitchen"]] = r
        elif r["kind"] == "domain":
            found_domain = DomainSpec.model_validate(spec)
        else:
            kitchens[r["name"]] = KitchenSpec.model_validate(spec)
    base = recipe_from(recipes[None]["spec"]) if None in recipes else None
    chosen = pick(recipes, kitchens, run_kitchen(kitchen, variation, base))
    if chosen is None:
        return Catalog(None, None, found_domain, kitchens)
    return Catalog(recipe_from(chosen["spec"]), chosen["version"], found_domain, kitchens)


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
    found: dict[uuid.UUID, tuple[RunState, RecipeSpec]] = {}
    for r in rows:
        if r["state"] is None:  # the very version known here
            _, state, recipe = known[r["id"]]
        else:
            state, recipe = RunState.model_validate_json(r["state"]), recipe_from(r["recipe"])
            STATES.put(r["version"], state, recipe)
        found[r["id"]] = (state, recipe)
    return found


async def claim_and_lock(
    conn: AnyConnection, consumer: str, message_id: uuid.UUID, order_run_id: uuid.UUID
) -> tuple[bool, tuple[RunState, RecipeSpec] | None]:
    """Record the message in the inbox and lock its run, in one round trip.

    Returns whether the message is new, and the run (None when unknown).
    """
    row = await conn.fetchrow(
        "WITH claim AS (INSERT INTO inbox (consumer, message_id) VALUES ($1, $2)"
        " ON CONFLICT DO NOTHING RETURNING 1)"
        " SELECT EXISTS (SELECT 1 FROM claim) AS fresh, r.state, r.recipe_spec"
        " FROM (SELECT 1) AS one LEFT JOIN LATERAL"
        " (SELECT state, recipe_spec FROM runs WHERE id = $3 FOR UPDATE) AS r ON true",
        consumer,
        message_id,
        order_run_id,
    )
    assert row is not None
    if row["state"] is None:
        return bool(row["fresh"]), None
    return bool(row["fresh"]), (
        RunState.model_validate_json(row["state"]),
        recipe_from(row["recipe_spec"]),
    )


async def save_run(conn: AnyConnection, state: RunState) -> None:
    """Store a run's new state."""
    await save_runs(conn, [state])


async def save_runs(conn: AnyConnection, states: list[RunState]) -> None:
    """Store several runs' new states in one round trip."""
    if not states:
        return
    rows = await conn.fetch(
        "UPDATE runs r SET phase = s.phase, state = s.state, updated_at = now()"
        " FROM unnest($1::uuid[], $2::text[], $3::jsonb[]) AS s(id, phase, state)"
        " WHERE r.id = s.id RETURNING r.id, r.xmin AS version",
        [s.order_run_id for s in states],
        [s.phase.value for s in states],
        [s.model_dump_json() for s in states],
    )
    by_id = {s.order_run_id: s for s in states}
    for r in rows:
        if (recipe := STATES.recipe(r["id"])) is not None:
            STATES.put(r["version"], by_id[r["id"]], recipe)


async def lock(conn: AnyConnection, key: str) -> None:
    """Take a transaction-scoped lock on a name (one admission per variation at a time)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", key)


async def open_runs(
    conn: AnyConnection, domain: str, recipe: str, variation: str, phase: str
) -> list[uuid.UUID]:
    """Runs of a variation in one phase, oldest first."""
    rows = await conn.fetch(
        "SELECT id FROM runs WHERE domain = $1 AND recipe = $2 AND variation = $3"
        " AND phase = $4 ORDER BY created_at, id",
        domain,
        recipe,
        variation,
        phase,
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
    final: dict[tuple[uuid.UUID, str, str], SetTimer | ClearTimer] = {}
    for run_id, changes in ops.items():
        for op in changes:
            final[(run_id, op.kind, op.step or "")] = op
    sets = [(key, op) for key, op in final.items() if isinstance(op, SetTimer)]
    clears = [key for key, op in final.items() if isinstance(op, ClearTimer)]
    if clears:
        await conn.execute(
            "DELETE FROM timers t USING unnest($1::uuid[], $2::text[], $3::text[])"
            " AS c(order_run_id, kind, step)"
            " WHERE t.order_run_id = c.order_run_id AND t.kind = c.kind AND t.step = c.step",
            *[list(column) for column in zip(*clears, strict=True)],
        )
    if sets:
        await conn.execute(
            "INSERT INTO timers (order_run_id, kind, step, attempt, due_at) SELECT * FROM"
            " unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::timestamptz[])"
            " ON CONFLICT (order_run_id, kind, step)"
            " DO UPDATE SET attempt = EXCLUDED.attempt, due_at = EXCLUDED.due_at",
            [key[0] for key, _ in sets],
            [key[1] for key, _ in sets],
            [key[2] for key, _ in sets],
            [op.attempt for _, op in sets],
            [op.due for _, op in sets],
        )


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


async def save_marks(conn: AnyConnection, marks: dict[int, datetime]) -> None:
    """Record how far partitions of the step events are read (never backwards)."""
    if marks:
        await conn.execute(
            "INSERT INTO read_marks (partition, read_through)"
            " SELECT * FROM unnest($1::int[], $2::timestamptz[]) ON CONFLICT (partition)"
            " DO UPDATE SET read_through = greatest(read_marks.read_through,"
            " excluded.read_through)",
            list(marks),
            list(marks.values()),
        )


# -- triggers ---------------------------------------------------------------------------------


async def registry_generation(conn: AnyConnection) -> tuple[Any, Any]:
    """A cheap fingerprint of the recipes and kitchens in the registry view."""
    row = await conn.fetchrow(
        "SELECT count(*), max(updated_at) FROM registry WHERE kind IN ('recipe', 'kitchen')"
    )
    assert row is not None
    return row[0], row[1]


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


# -- schedules --------------------------------------------------------------------------------


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
