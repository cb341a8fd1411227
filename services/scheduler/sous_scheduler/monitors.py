"""Monitors: checks on a cron or after an upstream run, their results, and held triggers.

A check is a RunTests to the test-runner, written to the outbox in the transaction that
claims its cron fire (unique per monitor and fire time) or takes in the upstream event. The
latest result of each monitor is kept from the test-result topic (inbox-deduplicated); a
passing one releases the `require: monitors_pass` firings it held, in the same transaction.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sous_common.db import AnyConnection
from sous_common.logs import get_logger
from sous_contracts.runs import DomainRunCompleted
from sous_contracts.specs import DomainSpec
from sous_contracts.tests import TestSuiteFinished
from sous_scheduler.adapters import monitors as rows
from sous_scheduler.domain.monitors import (
    Monitor,
    check_command,
    dataset_of,
    hold_reason,
    listening,
    monitors_of,
    written,
)
from sous_scheduler.domain.params import ParamError
from sous_scheduler.domain.plan import Rejected, kitchen_settings
from sous_scheduler.domain.schedules import due
from sous_scheduler.domain.triggers import Listener
from sous_scheduler.service import Scheduler
from sous_scheduler.store import MonitorRows

if TYPE_CHECKING:
    from sous_scheduler.triggers import Triggers

log = get_logger(__name__)


class Monitors:
    """Starts monitor checks and keeps their latest results for triggers."""

    def __init__(
        self, scheduler: Scheduler, triggers: Triggers, monitor_rows: MonitorRows = rows
    ) -> None:
        self.scheduler = scheduler
        self.triggers = triggers
        self.rows = monitor_rows
        self._generation: object = None
        self._domains: dict[str, DomainSpec] = {}
        self._all: list[Monitor] = []

    async def _load(self, conn: AnyConnection, generation: object = None) -> None:
        """Read the domains' monitors when the registry view changed.

        Every completion looks for monitors: a cheap fingerprint first (or the one the
        caller read in this transaction), specs when it changed.
        """
        if generation is None:
            generation = await self.scheduler.store.registry_generation(conn)
        if generation != self._generation:
            self._domains = dict(await self.rows.domains(conn))
            self._all = monitors_of(self._domains.items())
            self._generation = generation

    def listen(self, event: DomainRunCompleted, generation: object) -> bool | None:
        """Whether a monitor runs after `event` at the registry view's `generation`.

        None when the monitors known here are of another generation.
        """
        if generation != self._generation:
            return None
        return bool(listening(self._all, event))

    async def _monitors(self, conn: AnyConnection) -> list[Monitor]:
        await self._load(conn)
        return self._all

    async def tick(self) -> None:
        """Start the checks whose cron fire is due, once per (monitor, fire time)."""
        async with self.scheduler.transaction() as conn:
            scheduled = [m for m in await self._monitors(conn) if m.spec.schedule is not None]
        for monitor in scheduled:
            async with self.scheduler.transaction() as conn:
                await self._due(conn, monitor)

    async def _due(self, conn: AnyConnection, monitor: Monitor) -> None:
        assert monitor.spec.schedule is not None
        last = await self.scheduler.store.last_fire(conn, monitor.schedule_id)
        what = due(monitor.spec.schedule, last, self.scheduler.clock())
        await self.scheduler.store.record_fires(conn, monitor.schedule_id, what.skipped)
        if what.fire is None:
            return
        check_id = self.scheduler.context().new_id()
        if await self.scheduler.store.claim_fire(conn, monitor.schedule_id, what.fire, check_id):
            log.info("monitor due", monitor=monitor.monitor_id, fire_time=what.fire.isoformat())
            await self._check(conn, monitor, check_id)

    async def on_completed(
        self, conn: AnyConnection, event: DomainRunCompleted, generation: object
    ) -> None:
        """Start the checks of monitors that run after this upstream run (its transaction).

        `generation` is the registry view's fingerprint read in this transaction.
        """
        await self._load(conn, generation)
        for monitor in listening(self._all, event):
            await self._check(conn, monitor, self.scheduler.context(event).new_id(), event)

    async def _check(
        self,
        conn: AnyConnection,
        monitor: Monitor,
        check_id: uuid.UUID,
        causation: DomainRunCompleted | None = None,
    ) -> None:
        await self._load(conn)
        domain = self._domains.get(monitor.domain)
        try:
            params, connections = kitchen_settings(
                domain, monitor.spec.kitchen, await self.scheduler.store.kitchens(conn)
            )
            command = check_command(
                monitor,
                params=params,
                connections=connections,
                check_id=check_id,
                ctx=self.scheduler.context(causation),
                causation=causation,
            )
        except (Rejected, ParamError) as exc:
            log.warning("monitor check not started", monitor=monitor.monitor_id, reason=str(exc))
            return
        await self.scheduler.rt.emit(conn, [command])

    async def on_results(self, suites: list[TestSuiteFinished]) -> None:
        """Keep each monitor's latest result; a pass releases the firings it held.

        A batch of results in one transaction, with one inbox claim.
        """
        if not suites:
            return
        async with self.scheduler.transaction() as conn:
            fresh = await self.scheduler.store.claim_many(
                conn, self.scheduler.rt.group_id, [s.message_id for s in suites]
            )
            for suite in suites:
                if suite.message_id not in fresh:
                    continue
                fresh.discard(suite.message_id)  # a repeat within the batch counts once
                await self._result(conn, suite)

    async def _result(self, conn: AnyConnection, suite: TestSuiteFinished) -> None:
        if suite.domain is None or suite.kitchen is None or suite.monitor is None:
            log.warning("monitor result without domain or kitchen", suite=str(suite))
            return
        monitor_id = f"{suite.domain}/{suite.monitor}"
        latest = await self.rows.record(conn, monitor_id, suite)
        log.info(
            "monitor result",
            monitor=monitor_id,
            dataset=suite.dataset,
            passed=not suite.blocking,
            failed_tests=suite.failed_tests,
        )
        if latest and not suite.blocking and suite.dataset:
            await self._release(conn, suite.kitchen, suite.dataset)

    async def hold_reason(
        self, conn: AnyConnection, event: DomainRunCompleted
    ) -> tuple[str | None, list[str]]:
        """Why a `monitors_pass` trigger may not fire on this event, and the datasets."""
        recipe = await self.rows.recipe(conn, event.domain, event.recipe, event.kitchen)
        datasets = written(recipe, event) if recipe else [d.uri for d in event.outputs.datasets]
        watching = await self._watching(conn, event.kitchen)
        reason = hold_reason(datasets, watching, await self.rows.health(conn, event.kitchen))
        return reason, datasets

    async def _watching(self, conn: AnyConnection, kitchen: str) -> dict[str, str]:
        """The dataset each monitor of a kitchen watches, its params resolved."""
        kitchens = await self.scheduler.store.kitchens(conn)
        out: dict[str, str] = {}
        for m in await self._monitors(conn):
            if m.spec.kitchen != kitchen:
                continue
            try:
                params, _ = kitchen_settings(self._domains.get(m.domain), kitchen, kitchens)
                out[m.monitor_id] = dataset_of(m.spec, params)
            except (Rejected, ParamError):
                out[m.monitor_id] = m.spec.dataset
        return out

    async def _release(self, conn: AnyConnection, kitchen: str, dataset: str) -> None:
        index = await self.triggers.index(conn)
        for row in await self.rows.held(conn, kitchen, dataset):
            event = DomainRunCompleted.model_validate_json(row["event"])
            reason, _ = await self.hold_reason(conn, event)
            if reason is not None:
                continue
            listener: Listener | None = index.listener(row["trigger_id"], kitchen)
            if listener is None:  # the trigger was removed since
                continue
            log.info("held trigger released", trigger=row["trigger_id"], dataset=dataset)
            await self.triggers.fire(
                conn, listener, event, row["key"], released=row["order_run_id"]
            )
