"""Thin subscribers: decode the contract, hand it to the use case."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from sous_common.runtime import Runtime
from sous_contracts.backfills import (
    BackfillRejected,
    BackfillUpdated,
    CancelBackfill,
    RetryBackfill,
    StartBackfill,
)
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
    StepFinished,
    StepHeartbeat,
    StepSkipped,
    StepStarted,
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
from sous_scheduler.service import Scheduler
from sous_scheduler.triggers import Triggers

OrderRunCommand = Annotated[
    StartOrderRun | CancelOrderRun | StartBackfill | CancelBackfill | RetryBackfill,
    Field(discriminator="type"),
]
StepEvent = Annotated[
    StepStarted | StepHeartbeat | StepFinished | StepEventsMark | StepSkipped,
    Field(discriminator="type"),
]
RunLife = Annotated[
    OrderRunRejected
    | OrderRunQueued
    | OrderRunStarted
    | OrderRunFinished
    | BackfillUpdated
    | BackfillRejected
    | OrderRunDeduplicated
    | JoinWindowExpired
    | TriggerHeld,
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
TestEvent = Annotated[TestResult | TestSuiteFinished, Field(discriminator="type")]


def register(rt: Runtime, scheduler: Scheduler, triggers: Triggers, backfills: Backfills) -> None:
    """Subscribe the scheduler to its topics."""
    options = rt.subscriber_options()
    # Commands, step and test events come in batches, each applied in one transaction.
    batches = rt.batch_options(scheduler.settings.batch_max)
    # What the handlers below drop anyway passes by undecoded when its type header says so.
    rt.guard.ignore(rt.topic(STEP_EVENTS), StepSkipped)
    rt.guard.ignore(rt.topic(TEST_RESULTS), TestResult)
    rt.guard.ignore(rt.topic(RUN_EVENTS), *IGNORED_RUN_EVENTS)

    # Commands get several members of the group, each with its own partitions and batches;
    # a batch takes its variations' locks in name order, so two never wait on each other.
    for _ in range(scheduler.settings.consumers):
        _commands(rt, scheduler, backfills, batches)

    @rt.broker.subscriber(rt.topic(STEP_EVENTS), **batches)
    async def on_step_events(events: list[StepEvent]) -> None:
        # Skips are the scheduler's own report, already in its state.
        await scheduler.on_run_events([e for e in events if not isinstance(e, StepSkipped)])

    @rt.broker.subscriber(rt.topic(TEST_RESULTS), **batches)
    async def on_test_events(events: list[TestEvent]) -> None:
        # Single results are for consoles; the suite's summary moves the run on, or keeps
        # a monitor's latest result.
        suites = [e for e in events if isinstance(e, TestSuiteFinished)]
        await scheduler.on_run_events([e for e in suites if e.monitor is None])
        await triggers.monitors.on_results([e for e in suites if e.monitor is not None])

    @rt.broker.subscriber(rt.topic(RUN_EVENTS), **batches)
    async def on_run_events(events: list[RunLife]) -> None:
        # A nested child's end moves its parent on, a partition's end its backfill; the
        # other run events are for others.
        ends = [e for e in events if isinstance(e, OrderRunFinished | OrderRunRejected)]
        await scheduler.on_run_ends(ends)
        await backfills.on_run_ends(ends)

    @rt.broker.subscriber(rt.topic(DOMAIN_EVENTS), **batches)
    async def on_domain_events(events: list[DomainRunCompleted]) -> None:
        await triggers.on_completed_many(events)

    @rt.broker.subscriber(rt.topic(REGISTRY_CHANGELOG), **options)
    async def on_registry_change(change: RegistryEntityChanged) -> None:
        await scheduler.on_registry_change(change)


def _commands(
    rt: Runtime, scheduler: Scheduler, backfills: Backfills, batches: dict[str, Any]
) -> None:
    @rt.broker.subscriber(rt.topic(ORDER_RUN_COMMANDS), **batches)
    async def on_order_run_commands(commands: list[OrderRunCommand]) -> None:
        await scheduler.on_commands(commands, backfills.handle)
