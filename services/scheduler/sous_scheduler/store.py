"""What the use cases need from the outside: a host (transactions, outbox) and a store.

`sous_scheduler.adapters.postgres` is the store in production (the module itself satisfies
`Store`) and `sous_common.runtime.Runtime` the host; the unit tier runs the same use cases
on an in-memory pair beside the tests. `Tx` is whatever the host's transaction yields (a
connection for PostgreSQL): the use cases only hand it back to the store and the host.
"""

# Each call is documented where it is implemented, in the PostgreSQL adapter.
# ruff: noqa: D102

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol, TypeAlias

from sous_common.outbox import Record
from sous_common.settings import KafkaSettings
from sous_contracts.backfills import (
    BackfillCounts,
    BackfillStatus,
    PartitionState,
    PartitionUpdate,
    PartitionValue,
    StartBackfill,
)
from sous_contracts.envelope import Envelope
from sous_contracts.registry import RegistryEntityChanged
from sous_contracts.runs import DomainRunCompleted
from sous_contracts.specs import DomainSpec, KitchenSpec, RecipeSpec
from sous_contracts.tests import TestSuiteFinished
from sous_scheduler.adapters.backfills import Backfill, Waiting
from sous_scheduler.domain.events import ClearTimer, SetTimer, TimerKind
from sous_scheduler.domain.monitors import Health
from sous_scheduler.domain.plan import Catalog
from sous_scheduler.domain.state import RunState
from sous_scheduler.domain.triggers import JoinWindow

Tx: TypeAlias = Any
"""One transaction of the host, opaque to the use cases."""

Loaded: TypeAlias = tuple[RunState, RecipeSpec]

Cached: TypeAlias = tuple[Any, RunState, RecipeSpec]
"""A run known without a read: the version of its row that holds it, its state and recipe."""


class Host(Protocol):
    """Transactions and the outbox (the runtime in production)."""

    group_id: str
    kafka: KafkaSettings

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        """A transaction: everything done in it commits together or not at all."""

    async def emit(
        self, conn: Tx, messages: Iterable[Envelope], records: Iterable[Record] = ()
    ) -> int:
        """Queue messages in the outbox inside the transaction, in order."""

    async def partitions(self, topic: Any) -> set[int]:
        """The partitions of a catalog topic."""

    async def publish_now(self, message: Envelope, *, partition: int | None = None) -> None:
        """Publish at once, outside any transaction (marks)."""

    def at_once(self) -> AbstractAsyncContextManager[Tx]:
        """Writes and emits that all go in one statement at the end, or none (`Conflict`)."""


class Store(Protocol):
    """The scheduler's tables, each call inside a host transaction (see the PostgreSQL adapter)."""

    # -- inbox ---------------------------------------------------------------------------------
    async def claim(self, conn: Tx, consumer: str, message_id: uuid.UUID) -> bool: ...
    async def claim_many(
        self, conn: Tx, consumer: str, message_ids: list[uuid.UUID]
    ) -> set[uuid.UUID]: ...
    async def claim_and_lock(
        self, conn: Tx, consumer: str, messages: list[tuple[uuid.UUID, uuid.UUID | None]]
    ) -> tuple[set[uuid.UUID], dict[uuid.UUID, Loaded]]: ...

    # -- runs written at once (`Host.at_once`) -------------------------------------------------
    def cached_runs(self, order_run_ids: list[uuid.UUID]) -> Mapping[uuid.UUID, Cached]:
        """The runs among `order_run_ids` known here at a row version, read from nothing."""

    async def claim_all(self, conn: Tx, consumer: str, message_ids: list[uuid.UUID]) -> None:
        """Claim messages that must all be fresh; any seen before makes the block conflict."""

    async def save_runs_as_of(
        self,
        conn: Tx,
        states: list[tuple[Any, RunState]],
        timers: dict[uuid.UUID, list[SetTimer | ClearTimer]],
    ) -> None:
        """Save runs still at the versions given and their timers, or conflict."""

    # -- registry view --------------------------------------------------------------------------
    async def upsert_entity(self, conn: Tx, change: RegistryEntityChanged) -> None: ...
    async def recipe_versions(self, conn: Tx) -> list[Any]: ...
    async def kitchens(self, conn: Tx) -> dict[str, KitchenSpec]: ...
    async def registry_generation(self, conn: Tx) -> int:
        """The registry view's generation: it moves on with every change written to it."""

    async def claim_and_look(
        self, conn: Tx, consumer: str, message_ids: list[uuid.UUID]
    ) -> tuple[set[uuid.UUID], int]:
        """`claim_many` and `registry_generation` in one round trip."""

    async def catalog(
        self,
        conn: Tx,
        domain: str,
        recipe: str,
        *,
        kitchen: str | None = None,
        variation: str | None = None,
    ) -> Catalog: ...

    # -- runs and timers ------------------------------------------------------------------------
    async def insert_run(
        self, conn: Tx, state: RunState, recipe: RecipeSpec, idempotency_key: str | None
    ) -> bool: ...
    async def run_of_key(
        self, conn: Tx, domain: str, recipe: str, kitchen: str, key: str
    ) -> tuple[uuid.UUID, str] | None: ...
    async def run_for_update(self, conn: Tx, order_run_id: uuid.UUID) -> Loaded | None: ...
    async def runs_for_update(
        self, conn: Tx, order_run_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, Loaded]: ...
    async def save_run(self, conn: Tx, state: RunState) -> None: ...
    async def save_runs(
        self,
        conn: Tx,
        states: list[RunState],
        timers: dict[uuid.UUID, list[SetTimer | ClearTimer]] | None = None,
    ) -> None:
        """Store runs' new states and set or clear their timers (one round trip)."""

    async def lock(self, conn: Tx, key: str) -> None: ...
    async def lock_and_count(
        self,
        conn: Tx,
        keys: list[str],
        variations: list[tuple[str, str, str]],
        besides: list[uuid.UUID | None],
    ) -> list[tuple[int, int]]:
        """Take admission locks in their order, then count each variation's open runs."""

    async def count_open_runs(
        self, conn: Tx, domain: str, recipe: str, variation: str, besides: uuid.UUID | None
    ) -> tuple[int, int]: ...
    async def oldest_open_runs(
        self,
        conn: Tx,
        domain: str,
        recipe: str,
        variation: str,
        phase: str,
        limit: int,
        besides: uuid.UUID | None = None,
    ) -> list[uuid.UUID]: ...
    async def apply_timers(
        self, conn: Tx, order_run_id: uuid.UUID, ops: list[SetTimer | ClearTimer]
    ) -> None: ...
    async def apply_all_timers(
        self, conn: Tx, ops: dict[uuid.UUID, list[SetTimer | ClearTimer]]
    ) -> None: ...
    async def apply_timers_at_commit(
        self, conn: Tx, ops: dict[uuid.UUID, list[SetTimer | ClearTimer]]
    ) -> None:
        """`apply_all_timers` for the transaction's last change: written with its COMMIT."""

    async def claim_due_timer(
        self, conn: Tx, now: datetime
    ) -> tuple[uuid.UUID, TimerKind, str | None, int] | None: ...
    async def timers_due(self, conn: Tx, now: datetime) -> int: ...
    async def expect_marks(self, conn: Tx, partitions: set[int]) -> None: ...
    async def save_marks(self, conn: Tx, marks: dict[int, datetime]) -> dict[int, datetime]: ...
    async def extend_leases(self, conn: Tx, since: datetime, until: datetime) -> int: ...

    # -- triggers -------------------------------------------------------------------------------
    async def hold_for_debounce(
        self, conn: Tx, trigger_id: str, kitchen: str, event: DomainRunCompleted, now: datetime
    ) -> None: ...
    async def join_arrived(
        self,
        conn: Tx,
        trigger_id: str,
        kitchen: str,
        patterns: list[int],
        event: DomainRunCompleted,
        now: datetime,
        cutoff: datetime,
    ) -> int: ...
    async def clear_join(
        self, conn: Tx, trigger_id: str, kitchen: str
    ) -> list[DomainRunCompleted]: ...
    async def record_firing(
        self,
        conn: Tx,
        trigger_id: str,
        upstream: uuid.UUID,
        order_run_id: uuid.UUID | None,
        outcome: str,
    ) -> bool: ...
    async def refuse_firing(
        self, conn: Tx, trigger_id: str, upstream: uuid.UUID, reason: str
    ) -> None: ...
    async def held_for_debounce(self, conn: Tx) -> list[tuple[str, str, datetime, Any]]: ...
    async def release_debounced(self, conn: Tx, trigger_id: str, kitchen: str) -> None: ...
    async def join_window(
        self, conn: Tx, trigger_id: str, kitchen: str, key: str
    ) -> JoinWindow | None: ...
    async def save_join_window(
        self, conn: Tx, trigger_id: str, kitchen: str, key: str, window: JoinWindow | None
    ) -> None: ...
    async def claim_expired_window(
        self, conn: Tx, now: datetime
    ) -> tuple[str, str, str, JoinWindow] | None: ...

    # -- schedules ------------------------------------------------------------------------------
    async def last_fire(self, conn: Tx, schedule_id: str) -> datetime | None: ...
    async def record_fires(self, conn: Tx, schedule_id: str, times: list[datetime]) -> bool: ...
    async def claim_fire(
        self, conn: Tx, schedule_id: str, fire_time: datetime, order_run_id: uuid.UUID
    ) -> bool: ...


class BackfillRows(Protocol):
    """Backfills and their partitions (`sous_scheduler.adapters.backfills` in production)."""

    async def insert(
        self,
        conn: Tx,
        cmd: StartBackfill,
        variation: str,
        kitchen: str,
        values: list[PartitionValue],
    ) -> bool: ...
    async def for_update(self, conn: Tx, backfill_id: uuid.UUID) -> Backfill | None: ...
    async def counts(self, conn: Tx, backfill_id: uuid.UUID) -> BackfillCounts: ...
    async def first_waiting(
        self, conn: Tx, backfill_id: uuid.UUID, limit: int
    ) -> list[Waiting]: ...
    async def mark_running(
        self, conn: Tx, backfill_id: uuid.UUID, key: str, attempt: int, order_run_id: uuid.UUID
    ) -> None: ...
    async def backfills_of_runs(
        self, conn: Tx, order_run_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, uuid.UUID]: ...
    async def run_ended(
        self, conn: Tx, order_run_id: uuid.UUID, state: PartitionState, reason: str | None
    ) -> PartitionUpdate | None: ...
    async def move(
        self,
        conn: Tx,
        backfill_id: uuid.UUID,
        old: PartitionState,
        new: PartitionState,
        reason: str | None,
    ) -> list[PartitionUpdate]: ...
    async def running_runs(self, conn: Tx, backfill_id: uuid.UUID) -> list[uuid.UUID]: ...
    async def save(
        self, conn: Tx, backfill_id: uuid.UUID, status: BackfillStatus, cancelled: str | None
    ) -> None: ...


class MonitorRows(Protocol):
    """Monitor specs, results and held firings (`sous_scheduler.adapters.monitors`)."""

    async def domains(self, conn: Tx) -> list[tuple[str, DomainSpec]]: ...
    async def recipe(self, conn: Tx, domain: str, name: str, kitchen: str) -> RecipeSpec | None: ...
    async def record(self, conn: Tx, monitor_id: str, suite: TestSuiteFinished) -> bool: ...
    async def health(self, conn: Tx, kitchen: str) -> dict[str, Health]: ...
    async def hold(
        self,
        conn: Tx,
        trigger_id: str,
        event: DomainRunCompleted,
        datasets: list[str],
        key: str | None,
        order_run_id: uuid.UUID,
    ) -> None: ...
    async def held(self, conn: Tx, kitchen: str, dataset: str) -> list[Any]: ...
    async def release(
        self, conn: Tx, trigger_id: str, upstream: uuid.UUID, order_run_id: uuid.UUID
    ) -> bool: ...
