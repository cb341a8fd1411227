"""Thin subscribers: decode the contract, hand it to the use case."""

from __future__ import annotations

from typing import Annotated, Any, TypeGuard

from pydantic import Field

from sous_common.runtime import Runtime
from sous_contracts.backfills import (
    BackfillRejected,
    BackfillUpdated,
    CancelBackfill,
    RetryBackfill,
    StartBackfill,
)
from sous_contracts.flows import Outside, RunFlow
from sous_contracts.registry import RegistryEntityChanged
from sous_contracts.runs import (
    CancelOrderRun,
    DomainRunCompleted,
    JoinWindowExpired,
    OrderRunDeduplicated,
    OrderRunFinished,
    OrderRunQueued,
    OrderRunRejected,
    OrderRunStarted,
    StartOrderRun,
    TriggerHeld,
)
from sous_contracts.steps import (
    StepEventsMark,
    StepSkipped,
)
from sous_contracts.tests import TestResult, TestSuiteFinished
from sous_contracts.topics import (
    DOMAIN_EVENTS,
    ORDER_RUN_COMMANDS,
    REGISTRY_CHANGELOG,
    RUN_EVENTS,
    STEP_EVENTS,
    TEST_RESULTS,
)
from sous_scheduler.backfills import Backfills
from sous_scheduler.service import Progress, Scheduler
from sous_scheduler.triggers import Triggers

OrderRunCommand = Annotated[
    StartOrderRun | CancelOrderRun | StartBackfill | CancelBackfill | RetryBackfill,
    Field(discriminator="type"),
]
IGNORED_RUN_EVENTS = (
    OrderRunQueued,
    OrderRunStarted,
    BackfillUpdated,
    BackfillRejected,
    OrderRunDeduplicated,
    JoinWindowExpired,
    TriggerHeld,
)
"""Run events no scheduler handler acts on (only a run's end moves a parent or backfill)."""


def register(rt: Runtime, scheduler: Scheduler, triggers: Triggers, backfills: Backfills) -> None:
    """Subscribe the scheduler to its topics."""
    # Commands and events come in batches, each kind applied in one transaction.
    batches = rt.batch_options(scheduler.settings.batch_max)
    # What the handlers below drop anyway passes by undecoded when its type header says so.
    rt.guard.ignore(rt.topic(STEP_EVENTS), StepSkipped)
    rt.guard.ignore(rt.topic(TEST_RESULTS), TestResult)
    rt.guard.ignore(rt.topic(RUN_EVENTS), *IGNORED_RUN_EVENTS)

    # Commands get several members of the group, each with its own partitions and batches;
    # a batch takes its variations' locks in name order, so two never wait on each other.
    for _ in range(scheduler.settings.consumers):
        _commands(rt, scheduler, backfills, batches)

    # One consumer for the three event topics, one for the two slow ones: each consumer is
    # a fetch loop and a group member heartbeating on its own, which costs the broker too.
    @rt.broker.subscriber(
        rt.topic(STEP_EVENTS), rt.topic(TEST_RESULTS), rt.topic(RUN_EVENTS), **batches
    )
    async def on_run_flow(events: list[RunFlow]) -> None:
        # Step events and the suites' summaries move runs on, in one transaction (skips are
        # the scheduler's own report, single results are for consoles); a monitor's suite
        # keeps its latest result; a nested child's end moves its parent on, a partition's
        # end its backfill. The other run events are for others.
        progress = [e for e in events if isinstance(e, Progress | StepEventsMark)]
        await scheduler.on_run_events([e for e in progress if not _monitor(e)])
        await triggers.monitors.on_results([e for e in progress if _monitor(e)])
        ends = [e for e in events if isinstance(e, OrderRunFinished | OrderRunRejected)]
        await scheduler.on_run_ends(ends)
        await backfills.on_run_ends(ends)

    @rt.broker.subscriber(rt.topic(DOMAIN_EVENTS), rt.topic(REGISTRY_CHANGELOG), **batches)
    async def on_outside(messages: list[Outside]) -> None:
        # Registry changes first: a completion in the same batch may need a trigger they add.
        for change in messages:
            if isinstance(change, RegistryEntityChanged):
                await scheduler.on_registry_change(change)
        await triggers.on_completed_many([m for m in messages if isinstance(m, DomainRunCompleted)])


def _monitor(event: Progress | StepEventsMark) -> TypeGuard[TestSuiteFinished]:
    """True for a monitor's suite: it belongs to no run."""
    return isinstance(event, TestSuiteFinished) and event.monitor is not None


def _commands(
    rt: Runtime, scheduler: Scheduler, backfills: Backfills, batches: dict[str, Any]
) -> None:
    @rt.broker.subscriber(rt.topic(ORDER_RUN_COMMANDS), **batches)
    async def on_order_run_commands(commands: list[OrderRunCommand]) -> None:
        await scheduler.on_commands(commands, backfills.handle)
