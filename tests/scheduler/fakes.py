"""The scheduler's store and host in memory, for the unit tier of its use cases.

`MemoryHost` runs one transaction at a time (stricter than row locks, so every lock of the
PostgreSQL adapter holds) and rolls a failed one back whole: tables and outbox. `MemoryStore`
keeps the same uniqueness rules as the schema: inbox (consumer, message id), firings
(trigger, upstream message), run-once keys per (domain, recipe, kitchen), cron fires per
(schedule, fire time), one timer per (run, kind, step), read marks never going backwards.
`tests/scheduler/test_store_contract.py` runs the same checks on both stores.
"""

from __future__ import annotations

import contextlib
import copy
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sous_common.outbox import Conflict, Record
from sous_common.settings import KafkaSettings
from sous_contracts.backfills import (
    BackfillCounts,
    BackfillStatus,
    PartitionState,
    PartitionUpdate,
    PartitionValue,
    StartBackfill,
    partition_key,
)
from sous_contracts.envelope import Envelope
from sous_contracts.registry import RegistryEntityChanged
from sous_contracts.runs import DomainRunCompleted
from sous_contracts.specs import DomainSpec, KitchenSpec, RecipeSpec
from sous_contracts.tests import TestSuiteFinished
from sous_scheduler.adapters.backfills import Backfill, Waiting
from sous_scheduler.adapters.postgres import recipe_from
from sous_scheduler.domain.backfills import counts_of
from sous_scheduler.domain.events import ClearTimer, SetTimer, TimerKind
from sous_scheduler.domain.monitors import Health
from sous_scheduler.domain.plan import Catalog
from sous_scheduler.domain.state import RunState
from sous_scheduler.domain.triggers import JoinWindow
from sous_scheduler.domain.versions import pick, run_kitchen


@dataclass(frozen=True)
class RunRow:
    state: RunState
    recipe: str
    """The recipe as JSON, as the adapter keeps it."""
    idempotency_key: str | None
    seq: int


@dataclass(frozen=True)
class PartitionRow:
    key: str
    value: PartitionValue
    state: PartitionState
    attempt: int = 0
    order_run_id: uuid.UUID | None = None
    reason: str | None = None


@dataclass
class Tables:
    """Every table; values are immutable, so a copy of each container is a snapshot."""

    inbox: set[tuple[str, uuid.UUID]] = field(default_factory=set)
    registry: dict[str, dict[str, Any]] = field(default_factory=dict)
    generation: int = 0
    runs: dict[uuid.UUID, RunRow] = field(default_factory=dict)
    seq: int = 0
    timers: dict[tuple[uuid.UUID, str, str], tuple[int, datetime]] = field(default_factory=dict)
    marks: dict[int, datetime | None] = field(default_factory=dict)
    """Partition → read through (None: not read yet, PostgreSQL's -infinity)."""
    joins: dict[tuple[str, str, int], tuple[uuid.UUID, datetime, str]] = field(default_factory=dict)
    firings: dict[tuple[str, uuid.UUID], tuple[uuid.UUID | None, str]] = field(default_factory=dict)
    windows: dict[tuple[str, str, str], JoinWindow] = field(default_factory=dict)
    cron: dict[tuple[str, datetime], uuid.UUID | None] = field(default_factory=dict)
    backfills: dict[uuid.UUID, Backfill] = field(default_factory=dict)
    partitions: dict[uuid.UUID, list[PartitionRow]] = field(default_factory=dict)
    monitor_health: dict[tuple[str, str], tuple[datetime, Health]] = field(default_factory=dict)
    """(monitor, kitchen) → when its latest result was checked, and the result."""
    held: dict[tuple[str, uuid.UUID], dict[str, Any]] = field(default_factory=dict)
    """(trigger, upstream message) → the held firing, as the adapter's rows read."""
    outbox: list[Envelope] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    def snapshot(self) -> Tables:
        """A copy to roll back to."""
        return Tables(**{f.name: copy.copy(getattr(self, f.name)) for f in fields(self)})

    def restore(self, old: Tables) -> None:
        """Roll back to a snapshot."""
        for f in fields(self):
            setattr(self, f.name, getattr(old, f.name))


class MemoryHost:
    """Transactions (one at a time, all or nothing) and an outbox in a list."""

    def __init__(self, tables: Tables, group_id: str = "sous-scheduler") -> None:
        self.tables = tables
        self.group_id = group_id
        self.kafka = KafkaSettings()
        self.published: list[Envelope] = []
        self._busy = False

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Tables]:
        return self._atomic()

    def at_once(self) -> contextlib.AbstractAsyncContextManager[Tables]:
        """One statement is one transaction; the store raises `Conflict` where SQL would."""
        return self._atomic()

    @contextlib.asynccontextmanager
    async def _atomic(self) -> AsyncIterator[Tables]:
        # Use cases never nest transactions; a nested one would deadlock on PostgreSQL's locks.
        assert not self._busy, "a transaction inside a transaction"
        self._busy = True
        before = self.tables.snapshot()
        try:
            yield self.tables
        except BaseException:
            self.tables.restore(before)
            raise
        finally:
            self._busy = False

    async def emit(
        self, conn: Tables, messages: Iterable[Envelope], records: Iterable[Record] = ()
    ) -> int:
        messages = list(messages)
        for m in messages:
            m.to_json()  # what the outbox would store must serialise
        conn.outbox.extend(messages)
        conn.records.extend(records)
        return len(messages)

    async def partitions(self, topic: Any) -> set[int]:
        return {0}

    async def publish_now(self, message: Envelope, *, partition: int | None = None) -> None:
        self.published.append(message)


def _window(w: JoinWindow) -> JoinWindow:
    return copy.deepcopy(w)  # stored apart from the caller's, as JSON would be


class MemoryStore:
    """The scheduler's tables in memory (`sous_scheduler.store.Store`).

    Like the PostgreSQL adapter's state cache, it remembers the runs it last wrote or read;
    a row's version is the very state object it holds.
    """

    def __init__(self) -> None:
        self._known: dict[uuid.UUID, tuple[RunState, RecipeSpec]] = {}

    def _note(self, state: RunState, recipe: RecipeSpec) -> None:
        if state.phase.final:
            self._known.pop(state.order_run_id, None)
        else:
            self._known[state.order_run_id] = (state, recipe)

    # -- runs written at once ------------------------------------------------------------------
    def cached_runs(
        self, order_run_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[Any, RunState, RecipeSpec]]:
        return {
            i: (state, state, recipe)
            for i in order_run_ids
            if (known := self._known.get(i)) is not None
            for state, recipe in [known]
        }

    async def claim_all(self, conn: Tables, consumer: str, message_ids: list[uuid.UUID]) -> None:
        if any((consumer, m) in conn.inbox for m in message_ids):
            raise Conflict("a message was handled before")
        conn.inbox.update((consumer, m) for m in message_ids)

    async def save_runs_as_of(
        self,
        conn: Tables,
        states: list[tuple[Any, RunState]],
        timers: dict[uuid.UUID, list[SetTimer | ClearTimer]],
    ) -> None:
        for version, state in states:
            row = conn.runs.get(state.order_run_id)
            if row is None or row.state is not version:
                raise Conflict(f"run {state.order_run_id} changed")
        await self.save_runs(conn, [state for _, state in states], timers)

    # -- inbox ---------------------------------------------------------------------------------
    async def claim(self, conn: Tables, consumer: str, message_id: uuid.UUID) -> bool:
        if (consumer, message_id) in conn.inbox:
            return False
        conn.inbox.add((consumer, message_id))
        return True

    async def claim_many(
        self, conn: Tables, consumer: str, message_ids: list[uuid.UUID]
    ) -> set[uuid.UUID]:
        return {m for m in message_ids if await self.claim(conn, consumer, m)}

    async def claim_and_lock(
        self, conn: Tables, consumer: str, messages: list[tuple[uuid.UUID, uuid.UUID | None]]
    ) -> tuple[set[uuid.UUID], dict[uuid.UUID, tuple[RunState, RecipeSpec]]]:
        fresh = await self.claim_many(conn, consumer, [m for m, _ in messages])
        runs = [r for m, r in messages if m in fresh and r is not None]
        return fresh, await self.runs_for_update(conn, runs)

    # -- registry view --------------------------------------------------------------------------
    async def upsert_entity(self, conn: Tables, change: RegistryEntityChanged) -> None:
        conn.registry[change.entity_id] = {
            "entity_id": change.entity_id,
            "kind": change.kind.value,
            "domain": change.domain,
            "name": change.name,
            "version": change.version,
            "spec": json.dumps(change.spec),
            "deleted": change.deleted,
            "kitchen": change.kitchen,
        }
        conn.generation += 1

    def _live(self, conn: Tables) -> list[dict[str, Any]]:
        return [r for _, r in sorted(conn.registry.items()) if not r["deleted"]]

    async def recipe_versions(self, conn: Tables) -> list[Any]:
        return [r for r in self._live(conn) if r["kind"] == "recipe"]

    async def kitchens(self, conn: Tables) -> dict[str, KitchenSpec]:
        return {
            r["name"]: KitchenSpec.model_validate(json.loads(r["spec"]))
            for r in self._live(conn)
            if r["kind"] == "kitchen" and r["kitchen"] is None
        }

    async def registry_generation(self, conn: Tables) -> int:
        return conn.generation

    async def claim_and_look(
        self, conn: Tables, consumer: str, message_ids: list[uuid.UUID]
    ) -> tuple[set[uuid.UUID], int]:
        return await self.claim_many(conn, consumer, message_ids), conn.generation

    async def catalog(
        self,
        conn: Tables,
        domain: str,
        recipe: str,
        *,
        kitchen: str | None = None,
        variation: str | None = None,
    ) -> Catalog:
        recipes = {
            r["kitchen"]: r
            for r in self._live(conn)
            if r["kind"] == "recipe" and r["domain"] == domain and r["name"] == recipe
        }
        found_domain = next(
            (
                DomainSpec.model_validate(json.loads(r["spec"]))
                for r in self._live(conn)
                if r["kind"] == "domain" and r["name"] == domain and r["kitchen"] is None
            ),
            None,
        )
        kitchens = await self.kitchens(conn)
        base = recipe_from(recipes[None]["spec"]) if None in recipes else None
        chosen = pick(recipes, kitchens, run_kitchen(kitchen, variation, base))
        if chosen is None:
            return Catalog(None, None, found_domain, kitchens)
        return Catalog(recipe_from(chosen["spec"]), chosen["version"], found_domain, kitchens)

    # -- runs and timers ------------------------------------------------------------------------
    async def insert_run(
        self, conn: Tables, state: RunState, recipe: RecipeSpec, idempotency_key: str | None
    ) -> bool:
        if state.order_run_id in conn.runs:
            return False
        if idempotency_key is not None and await self.run_of_key(
            conn, state.domain, state.recipe, state.kitchen, idempotency_key
        ):
            return False
        conn.seq += 1
        text = recipe.model_dump_json(by_alias=True)
        conn.runs[state.order_run_id] = RunRow(state, text, idempotency_key, conn.seq)
        self._note(state, recipe)
        return True

    async def run_of_key(
        self, conn: Tables, domain: str, recipe: str, kitchen: str, key: str
    ) -> tuple[uuid.UUID, str] | None:
        for row in conn.runs.values():
            s = row.state
            if (s.domain, s.recipe, s.kitchen, row.idempotency_key) == (
                domain,
                recipe,
                kitchen,
                key,
            ):
                return s.order_run_id, s.phase.value
        return None

    async def run_for_update(
        self, conn: Tables, order_run_id: uuid.UUID
    ) -> tuple[RunState, RecipeSpec] | None:
        row = conn.runs.get(order_run_id)
        if row is None:
            return None
        recipe = recipe_from(row.recipe)
        self._note(row.state, recipe)
        return row.state, recipe

    async def runs_for_update(
        self, conn: Tables, order_run_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[RunState, RecipeSpec]]:
        found = {i: await self.run_for_update(conn, i) for i in sorted(set(order_run_ids))}
        return {i: loaded for i, loaded in found.items() if loaded is not None}

    async def save_run(self, conn: Tables, state: RunState) -> None:
        if (row := conn.runs.get(state.order_run_id)) is not None:
            conn.runs[state.order_run_id] = RunRow(state, row.recipe, row.idempotency_key, row.seq)
            if (known := self._known.get(state.order_run_id)) is not None:
                self._note(state, known[1])

    async def save_runs(
        self,
        conn: Tables,
        states: list[RunState],
        timers: dict[uuid.UUID, list[SetTimer | ClearTimer]] | None = None,
    ) -> None:
        for state in states:
            await self.save_run(conn, state)
        await self.apply_all_timers(conn, timers or {})

    async def lock(self, conn: Tables, key: str) -> None:
        """Nothing to take: transactions run one at a time."""

    def _open(
        self, conn: Tables, which: tuple[str, str, str], phase: str, besides: uuid.UUID | None
    ) -> list[uuid.UUID]:
        rows = sorted(
            (r for r in conn.runs.values() if r.state.phase.value == phase),
            key=lambda r: r.seq,
        )
        return [
            r.state.order_run_id
            for r in rows
            if (r.state.domain, r.state.recipe, r.state.variation) == which
            and r.state.order_run_id != besides
        ]

    async def lock_and_count(
        self,
        conn: Tables,
        keys: list[str],
        variations: list[tuple[str, str, str]],
        besides: list[uuid.UUID | None],
    ) -> list[tuple[int, int]]:
        return [
            await self.count_open_runs(conn, *which, run)
            for which, run in zip(variations, besides, strict=True)
        ]

    async def count_open_runs(
        self, conn: Tables, domain: str, recipe: str, variation: str, besides: uuid.UUID | None
    ) -> tuple[int, int]:
        which = (domain, recipe, variation)
        running = self._open(conn, which, "running", None)
        return len(running), len(self._open(conn, which, "queued", besides))

    async def oldest_open_runs(
        self,
        conn: Tables,
        domain: str,
        recipe: str,
        variation: str,
        phase: str,
        limit: int,
        besides: uuid.UUID | None = None,
    ) -> list[uuid.UUID]:
        return self._open(conn, (domain, recipe, variation), phase, besides)[: max(0, limit)]

    async def apply_timers(
        self, conn: Tables, order_run_id: uuid.UUID, ops: list[SetTimer | ClearTimer]
    ) -> None:
        await self.apply_all_timers(conn, {order_run_id: ops})

    async def apply_all_timers(
        self, conn: Tables, ops: dict[uuid.UUID, list[SetTimer | ClearTimer]]
    ) -> None:
        for run_id, changes in ops.items():
            for op in changes:
                key = (run_id, op.kind, op.step or "")
                if isinstance(op, SetTimer):
                    conn.timers[key] = (op.attempt, op.due)
                else:
                    conn.timers.pop(key, None)

    async def apply_timers_at_commit(
        self, conn: Tables, ops: dict[uuid.UUID, list[SetTimer | ClearTimer]]
    ) -> None:
        await self.apply_all_timers(conn, ops)

    async def timers_due(self, conn: Tables, now: datetime) -> int:
        return sum(1 for _, due in conn.timers.values() if due <= now)

    async def claim_due_timer(
        self, conn: Tables, now: datetime
    ) -> tuple[uuid.UUID, TimerKind, str | None, int] | None:
        marks = list(conn.marks.values())
        read = None if not marks or None in marks else min(m for m in marks if m is not None)
        due = [
            (at, key, attempt)
            for key, (attempt, at) in conn.timers.items()
            if at <= now and (key[1] != "lease" or (read is not None and at <= read))
        ]
        if not due:
            return None
        _, key, attempt = min(due, key=lambda d: d[0])
        del conn.timers[key]
        kind: TimerKind = key[1]  # type: ignore[assignment]
        return key[0], kind, key[2] or None, attempt

    async def expect_marks(self, conn: Tables, partitions: set[int]) -> None:
        for p in partitions:
            conn.marks.setdefault(p, None)

    async def save_marks(self, conn: Tables, marks: dict[int, datetime]) -> dict[int, datetime]:
        before = {p: at for p in marks if (at := conn.marks.get(p)) is not None}
        for p, at in marks.items():
            old = conn.marks.get(p)
            conn.marks[p] = at if old is None else max(old, at)
        return before

    async def extend_leases(self, conn: Tables, since: datetime, until: datetime) -> int:
        leases = [
            k for k, (_, due) in conn.timers.items() if k[1] == "lease" and since < due < until
        ]
        for key in leases:
            conn.timers[key] = (conn.timers[key][0], until)
        return len(leases)

    # -- triggers -------------------------------------------------------------------------------
    async def hold_for_debounce(
        self, conn: Tables, trigger_id: str, kitchen: str, event: DomainRunCompleted, now: datetime
    ) -> None:
        conn.joins[(trigger_id, kitchen, -1)] = (event.message_id, now, event.model_dump_json())

    async def join_arrived(
        self,
        conn: Tables,
        trigger_id: str,
        kitchen: str,
        patterns: list[int],
        event: DomainRunCompleted,
        now: datetime,
        cutoff: datetime,
    ) -> int:
        for p in patterns:
            conn.joins[(trigger_id, kitchen, p)] = (event.message_id, now, event.model_dump_json())
        mine = [k for k in conn.joins if k[:2] == (trigger_id, kitchen) and k[2] >= 0]
        for k in mine:
            if conn.joins[k][1] < cutoff:
                del conn.joins[k]
        return sum(1 for k in mine if k in conn.joins)

    async def clear_join(
        self, conn: Tables, trigger_id: str, kitchen: str
    ) -> list[DomainRunCompleted]:
        mine = [k for k in conn.joins if k[:2] == (trigger_id, kitchen) and k[2] >= 0]
        rows = sorted((conn.joins.pop(k) for k in mine), key=lambda r: r[1])
        return [DomainRunCompleted.model_validate_json(r[2]) for r in rows]

    async def record_firing(
        self,
        conn: Tables,
        trigger_id: str,
        upstream: uuid.UUID,
        order_run_id: uuid.UUID | None,
        outcome: str,
    ) -> bool:
        if (trigger_id, upstream) in conn.firings:
            return False
        conn.firings[(trigger_id, upstream)] = (order_run_id, outcome)
        return True

    async def refuse_firing(
        self, conn: Tables, trigger_id: str, upstream: uuid.UUID, reason: str
    ) -> None:
        if (trigger_id, upstream) in conn.firings:
            conn.firings[(trigger_id, upstream)] = (None, f"refused: {reason}")

    async def held_for_debounce(self, conn: Tables) -> list[tuple[str, str, datetime, Any]]:
        return [
            (t, k, at, DomainRunCompleted.model_validate_json(event))
            for (t, k, p), (_, at, event) in conn.joins.items()
            if p == -1
        ]

    async def release_debounced(self, conn: Tables, trigger_id: str, kitchen: str) -> None:
        conn.joins.pop((trigger_id, kitchen, -1), None)

    async def join_window(
        self, conn: Tables, trigger_id: str, kitchen: str, key: str
    ) -> JoinWindow | None:
        found = conn.windows.get((trigger_id, kitchen, key))
        return _window(found) if found is not None else None

    async def save_join_window(
        self, conn: Tables, trigger_id: str, kitchen: str, key: str, window: JoinWindow | None
    ) -> None:
        if window is None:
            conn.windows.pop((trigger_id, kitchen, key), None)
        else:
            conn.windows[(trigger_id, kitchen, key)] = _window(window)

    async def claim_expired_window(
        self, conn: Tables, now: datetime
    ) -> tuple[str, str, str, JoinWindow] | None:
        due = [(w.deadline, k) for k, w in conn.windows.items() if w.deadline <= now]
        if not due:
            return None
        _, key = min(due)
        return key[0], key[1], key[2], conn.windows.pop(key)

    # -- schedules ------------------------------------------------------------------------------
    async def last_fire(self, conn: Tables, schedule_id: str) -> datetime | None:
        return max((t for s, t in conn.cron if s == schedule_id), default=None)

    async def record_fires(self, conn: Tables, schedule_id: str, times: list[datetime]) -> bool:
        new = [t for t in times if (schedule_id, t) not in conn.cron]
        for t in new:
            conn.cron[(schedule_id, t)] = None
        return bool(times) and times[-1] in new

    async def claim_fire(
        self, conn: Tables, schedule_id: str, fire_time: datetime, order_run_id: uuid.UUID
    ) -> bool:
        if (schedule_id, fire_time) in conn.cron:
            return False
        conn.cron[(schedule_id, fire_time)] = order_run_id
        return True


class MemoryMonitorRows:
    """Monitor results and held firings in memory (`sous_scheduler.store.MonitorRows`)."""

    async def domains(self, conn: Tables) -> list[tuple[str, DomainSpec]]:
        rows = [
            r
            for r in conn.registry.values()
            if r["kind"] == "domain" and not r["deleted"] and r["kitchen"] is None
        ]
        return sorted((r["name"], DomainSpec.model_validate(json.loads(r["spec"]))) for r in rows)

    async def recipe(self, conn: Tables, domain: str, name: str, kitchen: str) -> RecipeSpec | None:
        found = [
            r
            for r in conn.registry.values()
            if (r["kind"], r["domain"], r["name"]) == ("recipe", domain, name)
            and not r["deleted"]
            and r["kitchen"] in (kitchen, None)
        ]
        found.sort(key=lambda r: r["kitchen"] is None)  # the kitchen's own first
        return RecipeSpec.model_validate(json.loads(found[0]["spec"])) if found else None

    async def record(self, conn: Tables, monitor_id: str, suite: TestSuiteFinished) -> bool:
        key = (monitor_id, suite.kitchen or "")
        if (kept := conn.monitor_health.get(key)) is not None and kept[0] > suite.occurred_at:
            return False
        health = Health(suite.dataset or "", not suite.blocking, list(suite.failed_tests))
        conn.monitor_health[key] = (suite.occurred_at, health)
        return True

    async def health(self, conn: Tables, kitchen: str) -> dict[str, Health]:
        return {m: h for (m, k), (_, h) in conn.monitor_health.items() if k == kitchen}

    async def hold(
        self,
        conn: Tables,
        trigger_id: str,
        event: DomainRunCompleted,
        datasets: list[str],
        key: str | None,
        order_run_id: uuid.UUID,
    ) -> None:
        conn.held.setdefault(
            (trigger_id, event.message_id),
            {
                "trigger_id": trigger_id,
                "upstream_message_id": event.message_id,
                "kitchen": event.kitchen,
                "datasets": list(datasets),
                "event": event.model_dump_json(),
                "key": key,
                "order_run_id": order_run_id,
            },
        )

    async def held(self, conn: Tables, kitchen: str, dataset: str) -> list[Any]:
        return [
            row
            for row in conn.held.values()
            if row["kitchen"] == kitchen and dataset in row["datasets"]
        ]

    async def release(
        self, conn: Tables, trigger_id: str, upstream: uuid.UUID, order_run_id: uuid.UUID
    ) -> bool:
        if conn.held.pop((trigger_id, upstream), None) is None:
            return False
        conn.firings[(trigger_id, upstream)] = (order_run_id, "started")
        return True


class MemoryBackfillRows:
    """Backfills and their partitions in memory (`sous_scheduler.store.BackfillRows`)."""

    async def insert(
        self,
        conn: Tables,
        cmd: StartBackfill,
        variation: str,
        kitchen: str,
        values: list[PartitionValue],
    ) -> bool:
        if cmd.backfill_id in conn.backfills:
            return False
        conn.backfills[cmd.backfill_id] = Backfill(
            cmd, variation, kitchen, BackfillStatus.RUNNING, None
        )
        conn.partitions[cmd.backfill_id] = [
            PartitionRow(partition_key(v), v, PartitionState.WAITING) for v in values
        ]
        return True

    async def for_update(self, conn: Tables, backfill_id: uuid.UUID) -> Backfill | None:
        return conn.backfills.get(backfill_id)

    async def counts(self, conn: Tables, backfill_id: uuid.UUID) -> BackfillCounts:
        states: dict[PartitionState, int] = {}
        for p in conn.partitions.get(backfill_id, []):
            states[p.state] = states.get(p.state, 0) + 1
        return counts_of(states)

    async def first_waiting(
        self, conn: Tables, backfill_id: uuid.UUID, limit: int
    ) -> list[Waiting]:
        waiting = [p for p in conn.partitions[backfill_id] if p.state is PartitionState.WAITING]
        return [Waiting(p.key, p.value, p.attempt) for p in waiting[:limit]]

    def _update(self, conn: Tables, backfill_id: uuid.UUID, i: int, **changes: Any) -> None:
        rows = list(conn.partitions[backfill_id])
        rows[i] = PartitionRow(**{**rows[i].__dict__, **changes})
        conn.partitions[backfill_id] = rows

    async def mark_running(
        self, conn: Tables, backfill_id: uuid.UUID, key: str, attempt: int, order_run_id: uuid.UUID
    ) -> None:
        for i, p in enumerate(conn.partitions[backfill_id]):
            if p.key == key:
                self._update(
                    conn,
                    backfill_id,
                    i,
                    state=PartitionState.RUNNING,
                    attempt=attempt,
                    order_run_id=order_run_id,
                    reason=None,
                )

    async def backfills_of_runs(
        self, conn: Tables, order_run_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, uuid.UUID]:
        wanted = set(order_run_ids)
        return {
            p.order_run_id: backfill_id
            for backfill_id, rows in conn.partitions.items()
            for p in rows
            if p.order_run_id in wanted
        }

    async def run_ended(
        self, conn: Tables, order_run_id: uuid.UUID, state: PartitionState, reason: str | None
    ) -> PartitionUpdate | None:
        for backfill_id, rows in conn.partitions.items():
            for i, p in enumerate(rows):
                if p.order_run_id == order_run_id and p.state is PartitionState.RUNNING:
                    self._update(conn, backfill_id, i, state=state, reason=reason)
                    return PartitionUpdate(
                        key=p.key,
                        state=state,
                        order_run_id=order_run_id,
                        attempt=p.attempt,
                        reason=reason,
                    )
        return None

    async def move(
        self,
        conn: Tables,
        backfill_id: uuid.UUID,
        old: PartitionState,
        new: PartitionState,
        reason: str | None,
    ) -> list[PartitionUpdate]:
        moved = []
        for i, p in enumerate(conn.partitions[backfill_id]):
            if p.state is old:
                self._update(conn, backfill_id, i, state=new, reason=reason)
                moved.append(
                    PartitionUpdate(
                        key=p.key,
                        state=new,
                        order_run_id=p.order_run_id,
                        attempt=p.attempt,
                        reason=reason,
                    )
                )
        return moved

    async def running_runs(self, conn: Tables, backfill_id: uuid.UUID) -> list[uuid.UUID]:
        return [
            p.order_run_id
            for p in conn.partitions[backfill_id]
            if p.state is PartitionState.RUNNING and p.order_run_id is not None
        ]

    async def save(
        self, conn: Tables, backfill_id: uuid.UUID, status: BackfillStatus, cancelled: str | None
    ) -> None:
        old = conn.backfills[backfill_id]
        conn.backfills[backfill_id] = Backfill(
            old.command, old.variation, old.kitchen, status, cancelled
        )
