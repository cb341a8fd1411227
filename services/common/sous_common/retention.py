"""Retention: old records purged in bounded batches by a durable timer, one replica at a time.

Each service declares what it keeps as `Rule`s in its adapters (a table, the condition that
makes a row old enough, and the rows of other tables that go with it); the inbox and the
refused outbox rows are every service's and come from here. A `Purger` applies the rules:

- in batches of `batch_size` rows, each batch its own short transaction that skips rows
  other transactions hold (`FOR UPDATE SKIP LOCKED`), so a large purge never holds long locks;
- under a session advisory lock per schema, so one replica purges at a time;
- when the `retention_timer` row says it is due: the next due time is written only after a
  purge completed, so a restart or a crash in the middle loses nothing and repeats at most one
  purge, and a restart does not purge again before the interval has passed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import asyncpg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sous_common.db import AnyConnection, checked_schema
from sous_common.logs import get_logger

log = get_logger(__name__)

Kind = Literal[
    "runs",
    "attempts",
    "inbox",
    "outbox",
    "test_history",
    "firings",
    "audit",
    "console",
    "backfills",
]
"""The settings a rule may take its age from (`SOUS_RETENTION_<KIND>_DAYS`)."""


class RetentionSettings(BaseSettings):
    """How long each kind of record is kept, in days (`SOUS_RETENTION_*`); 0 keeps it forever."""

    model_config = SettingsConfigDict(env_prefix="SOUS_RETENTION_", extra="ignore")

    runs_days: float = Field(90, ge=0)
    """Finished order runs and their steps and tests (scheduler state, registry read model)."""
    attempts_days: float = Field(30, ge=0)
    """Finished step attempts an executor recorded."""
    inbox_days: float = Field(35, ge=0)
    """Handled message ids (every service). Keep longer than the longest topic retention:
    a message redelivered after its id was forgotten would take effect twice."""
    outbox_days: float = Field(30, ge=0)
    """Outbox rows the broker refused (sent rows leave the outbox as soon as they are sent)."""
    test_history_days: float = Field(400, ge=0)
    """Test measurements the test-runner keeps for `history` tests."""
    firings_days: float = Field(35, ge=0)
    """Trigger firings and cron fires of the scheduler, held firings whose trigger was
    removed and the last results of removed monitors. Keep longer than the retention of
    `sous.events.domain`: a firing forgotten while its event is still on the topic could
    fire again on a replay."""
    audit_days: float = Field(0, ge=0)
    """The registry's audit trail; kept forever unless set."""
    console_days: float = Field(90, ge=0)
    """The console's read model of finished runs, their steps, tests and completions."""
    backfills_days: float = Field(90, ge=0)
    """Finished backfills and their partitions (scheduler state, registry read model); never
    a running one, nor one with a partition still waiting or running."""
    interval_s: float = Field(3600.0, gt=0)
    """Time between two purges of a service."""
    check_s: float = Field(60.0, gt=0)
    """How often each replica looks whether a purge is due."""
    batch_size: int = Field(1000, gt=0)
    """Most rows deleted in one transaction."""

    def days(self, kind: Kind) -> float:
        """Return how many days records of `kind` are kept (0: forever)."""
        value: float = getattr(self, f"{kind}_days")
        return value


def cutoff(now: datetime, days: float) -> datetime | None:
    """Return the moment before which records are old enough to go; None keeps them all."""
    if days <= 0:
        return None
    return now - timedelta(days=days)


@dataclass(frozen=True)
class Rule:
    """One kind of record a service purges.

    `older` is an SQL condition on `table` in which `$1` is the cutoff (a timestamptz); it
    must hold only for rows nothing live still needs (a finished run, never a running one).
    `cascade` names `(table, column)` pairs whose rows go with the purged rows' `key`.
    """

    name: str
    """What the operator sees (`runs`, `run_steps`, `inbox` …)."""
    kind: Kind
    """The setting that says how old a row may get."""
    table: str
    older: str
    key: str = "ctid"
    cascade: tuple[tuple[str, str], ...] = ()

    def count_sql(self) -> str:
        """Return the query counting the rows that would go."""
        return f"SELECT count(*) FROM {self.table} WHERE {self.older}"

    def delete_sql(self) -> str:
        """Return the statement deleting one batch (`$2` rows at most); it returns the count."""
        parts = [
            f"doomed AS (SELECT {self.key} AS k FROM {self.table} WHERE {self.older}"
            " LIMIT $2 FOR UPDATE SKIP LOCKED)"
        ]
        parts += [
            f"gone_{i} AS (DELETE FROM {table} WHERE {column} = ANY(ARRAY(SELECT k FROM doomed)))"
            for i, (table, column) in enumerate(self.cascade)
        ]
        parts.append(
            f"gone AS (DELETE FROM {self.table}"
            f" WHERE {self.key} = ANY(ARRAY(SELECT k FROM doomed)) RETURNING 1)"
        )
        return "WITH " + ", ".join(parts) + " SELECT count(*) FROM gone"


COMMON_RULES: tuple[Rule, ...] = (
    Rule("inbox", "inbox", "inbox", "received_at < $1"),
    Rule("outbox_refused", "outbox", "outbox_refused", "refused_at < $1"),
)
"""What every service with a schema keeps: the inbox and the refused outbox rows."""


@dataclass(frozen=True)
class Outcome:
    """How many rows of one rule went (or would go)."""

    name: str
    days: float
    rows: int


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Purger:
    """Applies a service's rules to its schema; run `tick()` periodically (see `Runtime`)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        schema: str,
        rules: Iterable[Rule],
        settings: RetentionSettings | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._pool = pool
        self._schema = checked_schema(schema)
        self.rules = tuple(rules)
        self.settings = settings or RetentionSettings()
        self._clock = clock
        self.checks = 0
        """Timer checks done by this replica (tests wait on it as a barrier)."""

    async def preview(self) -> list[Outcome]:
        """Count the rows each rule would purge now, deleting nothing."""
        now = self._clock()
        found = []
        async with self._pool.acquire() as conn:
            for rule in self.rules:
                days = self.settings.days(rule.kind)
                before = cutoff(now, days)
                rows = 0 if before is None else int(await conn.fetchval(rule.count_sql(), before))
                found.append(Outcome(rule.name, days, rows))
        return found

    async def purge(self) -> list[Outcome] | None:
        """Purge now under the schema's lock; None when another replica is purging."""
        async with self._pool.acquire() as lock:
            if not await self._lock(lock):
                return None
            try:
                return await self._purge_all()
            finally:
                await self._unlock(lock)

    async def tick(self) -> bool:
        """Purge when the durable timer is due and no other replica purges; True if it did."""
        self.checks += 1
        async with self._pool.acquire() as lock:
            if not await self._lock(lock):
                return False
            try:
                due = await lock.fetchval("SELECT due_at FROM retention_timer")
                if due is not None and due > self._clock():
                    return False
                started = self._clock()
                outcomes = await self._purge_all()
                finished = self._clock()
                if purged := {o.name: o.rows for o in outcomes if o.rows}:
                    log.info("retention purged", schema=self._schema, rows=purged)
                await lock.execute(
                    "INSERT INTO retention_timer"
                    " (id, due_at, last_started_at, last_finished_at, last_purged)"
                    " VALUES (true, $1, $2, $3, $4::jsonb) ON CONFLICT (id) DO UPDATE SET"
                    " due_at = excluded.due_at, last_started_at = excluded.last_started_at,"
                    " last_finished_at = excluded.last_finished_at,"
                    " last_purged = excluded.last_purged",
                    finished + timedelta(seconds=self.settings.interval_s),
                    started,
                    finished,
                    json.dumps({o.name: o.rows for o in outcomes}),
                )
                return True
            finally:
                await self._unlock(lock)

    async def _purge_all(self) -> list[Outcome]:
        now = self._clock()
        outcomes = []
        for rule in self.rules:
            days = self.settings.days(rule.kind)
            before = cutoff(now, days)
            rows = 0 if before is None else await self._purge_rule(rule, before)
            outcomes.append(Outcome(rule.name, days, rows))
        return outcomes

    async def _purge_rule(self, rule: Rule, before: datetime) -> int:
        total = 0
        sql = rule.delete_sql()
        batch = self.settings.batch_size
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                n = int(await conn.fetchval(sql, before, batch))
            total += n
            if n < batch:
                return total

    async def _lock(self, conn: AnyConnection) -> bool:
        return bool(
            await conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtext($1))", f"sous-retention:{self._schema}"
            )
        )

    async def _unlock(self, conn: AnyConnection) -> None:
        await conn.execute(
            "SELECT pg_advisory_unlock(hashtext($1))", f"sous-retention:{self._schema}"
        )
