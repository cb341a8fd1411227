"""Thin subscribers: each topic's messages go to their read-model write."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from sous_common.runtime import Runtime
from sous_console import backfills, projection
from sous_console.service import apply
from sous_contracts.backfills import BackfillRejected, BackfillUpdated
from sous_contracts.registry import RegistryEntityChanged
from sous_contracts.runs import (
    DomainRunCompleted,
    JoinWindowExpired,
    OrderRunDeduplicated,
    OrderRunFinished,
    OrderRunQueued,
    OrderRunRejected,
    OrderRunStarted,
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
    REGISTRY_CHANGELOG,
    RUN_EVENTS,
    STEP_EVENTS,
    TEST_RESULTS,
)

RunEvent = Annotated[
    OrderRunQueued
    | OrderRunStarted
    | OrderRunFinished
    | OrderRunRejected
    | BackfillUpdated
    | BackfillRejected
    | OrderRunDeduplicated
    | JoinWindowExpired
    | TriggerHeld,
    Field(discriminator="type"),
]
StepEvent = Annotated[
    StepStarted | StepHeartbeat | StepFinished | StepEventsMark | StepSkipped,
    Field(discriminator="type"),
]
TestEvent = Annotated[TestResult | TestSuiteFinished, Field(discriminator="type")]


def register(rt: Runtime, *, consumers: int = 1) -> None:
    """Subscribe the console's consumer group to the five topics it shows.

    The busy topics get `consumers` consumers each, so runs on different partitions are
    applied side by side; a partition keeps its order.
    """
    options = rt.subscriber_options()
    busy = {**options, "max_workers": consumers}

    @rt.broker.subscriber(rt.topic(RUN_EVENTS), **busy)
    async def on_run_event(event: RunEvent) -> None:
        if isinstance(event, BackfillUpdated):
            await apply(rt, event, backfills.backfill_updated)
        elif isinstance(event, BackfillRejected):
            await apply(rt, event, backfills.backfill_rejected)
        elif isinstance(event, JoinWindowExpired):
            await apply(rt, event, backfills.join_expired)
        elif not isinstance(event, OrderRunDeduplicated | TriggerHeld):  # no run to show yet
            await apply(rt, event, projection.run_event)

    @rt.broker.subscriber(rt.topic(STEP_EVENTS), **busy)
    async def on_step_event(event: StepEvent) -> None:
        if isinstance(event, StepStarted | StepFinished):  # heartbeats and marks show nothing
            await apply(rt, event, projection.step_event)
        elif isinstance(event, StepSkipped):
            await apply(rt, event, projection.step_skipped)

    @rt.broker.subscriber(rt.topic(TEST_RESULTS), **busy)
    async def on_test_event(event: TestEvent) -> None:
        if isinstance(event, TestResult):  # suite summaries are counted from their results
            await apply(rt, event, projection.test_result)

    @rt.broker.subscriber(rt.topic(DOMAIN_EVENTS), **options)
    async def on_completion(event: DomainRunCompleted) -> None:
        await apply(rt, event, projection.completion)

    @rt.broker.subscriber(rt.topic(REGISTRY_CHANGELOG), **options)
    async def on_registry_change(change: RegistryEntityChanged) -> None:
        await apply(rt, change, projection.entity)
