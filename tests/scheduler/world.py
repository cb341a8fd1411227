"""The scheduler's use cases in memory: a clock, the fake store, and answers to its commands."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sous_contracts.common import StepStatus
from sous_contracts.envelope import Envelope, new_message_id
from sous_contracts.runs import StartOrderRun
from sous_contracts.steps import ExecuteStep, StepFinished, StepStarted
from sous_scheduler.backfills import Backfills
from sous_scheduler.domain.events import Context
from sous_scheduler.service import Scheduler
from sous_scheduler.settings import SchedulerSettings
from sous_scheduler.triggers import Triggers
from tests.scheduler.fakes import (
    MemoryBackfillRows,
    MemoryHost,
    MemoryMonitorRows,
    MemoryStore,
    Tables,
)
from tests.scheduler.integration.conftest import KITCHENS

T0 = datetime(2026, 11, 1, tzinfo=UTC)
NOOP = {"run": {"kind": "noop"}}
M = TypeVar("M", bound=Envelope)


@dataclass
class World:
    """One scheduler replica on the fake store, with a clock the test moves."""

    now: datetime = T0
    tables: Tables = field(default_factory=Tables)

    def __post_init__(self) -> None:
        self.host = MemoryHost(self.tables)
        settings = SchedulerSettings(dispatch_lease_s=20, heartbeat_interval_s=5)
        self.scheduler = Scheduler(self.host, settings, lambda: self.now, MemoryStore())
        self.triggers = Triggers(self.scheduler, MemoryMonitorRows())
        self.backfills = Backfills(self.scheduler, MemoryBackfillRows())

    async def apply(self, *entities: Any) -> None:
        """Put kitchens and these entities into the registry view."""
        for change in [*KITCHENS, *entities]:
            await self.scheduler.on_registry_change(change)

    def sent(self, kind: type[M], order_run_id: uuid.UUID | None = None) -> list[M]:
        """What the scheduler queued in its outbox, of one type (and one run)."""
        return [
            m
            for m in self.tables.outbox
            if isinstance(m, kind)
            and (order_run_id is None or getattr(m, "order_run_id", None) == order_run_id)
        ]

    def later(self, seconds: float) -> None:
        """Move the clock on."""
        self.now += timedelta(seconds=seconds)


def context_at(now: datetime) -> Context:
    """A decision's outside world at `now`, with ids counted from 100: equal on every call."""
    counter = itertools.count(100)
    return Context(now=now, new_id=lambda: uuid.UUID(int=next(counter)))


def start(domain: str, recipe: str, **kw: Any) -> StartOrderRun:
    """A command starting a run of the prod variation."""
    return StartOrderRun(
        order_run_id=new_message_id(), domain=domain, recipe=recipe, variation="prod", **kw
    )


def answers(
    cmd: ExecuteStep, status: StepStatus = StepStatus.SUCCEEDED
) -> tuple[StepStarted, StepFinished]:
    """What an executor sends for one dispatched attempt."""
    ids = {
        "order_run_id": cmd.order_run_id,
        "step_run_id": cmd.step_run_id,
        "attempt": cmd.attempt,
        "worker_id": "fake",
        "causation_id": cmd.message_id,
        "correlation_id": cmd.correlation_id,
    }
    return StepStarted(step=cmd.step, **ids), StepFinished(step=cmd.step, status=status, **ids)
