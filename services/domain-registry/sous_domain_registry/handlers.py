"""Subscribers: spec bundles to apply, and the read model's run, step and test events."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from sous_common.runtime import Runtime
from sous_contracts.backfills import BackfillRejected, BackfillUpdated
from sous_contracts.registry import ApplySpecs
from sous_contracts.runs import (
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
from sous_contracts.topics import REGISTRY_COMMANDS, RUN_EVENTS, STEP_EVENTS, TEST_RESULTS
from sous_domain_registry import backfills, runs, service

RunFlow = Annotated[
    OrderRunRejected
    | OrderRunQueued
    | OrderRunStarted
    | OrderRunFinished
    | BackfillUpdated
    | BackfillRejected
    | OrderRunDeduplicated
    | JoinWindowExpired
    | TriggerHeld
    | StepStarted
    | StepHeartbeat
    | StepFinished
    | StepEventsMark
    | StepSkipped
    | TestResult
    | TestSuiteFinished,
    Field(discriminator="type"),
]
"""What the run events, step events and test results topics carry (one consumer reads all)."""


def register(rt: Runtime) -> None:
    """Subscribe the read model's handlers on the runtime's broker."""
    options = rt.subscriber_options()
    consumer = rt.group_id

    # One consumer for the three event topics: each consumer is a fetch loop and a group
    # member heartbeating on its own, which costs the broker too. Spec bundles keep theirs,
    # so applying one never waits behind a flood of events.
    @rt.broker.subscriber(
        rt.topic(RUN_EVENTS), rt.topic(STEP_EVENTS), rt.topic(TEST_RESULTS), **options
    )
    async def on_run_flow(event: RunFlow) -> None:
        if isinstance(event, BackfillUpdated | BackfillRejected):
            await backfills.on_backfill_event(rt, event, consumer)
        elif isinstance(event, runs.StepEvent):
            await runs.on_step_event(rt, event, consumer)
        elif isinstance(event, runs.TestEvent):
            await runs.on_test_event(rt, event, consumer)
        else:
            await runs.on_run_event(rt, event, consumer)

    @rt.broker.subscriber(rt.topic(REGISTRY_COMMANDS), **options)
    async def on_apply_specs(command: ApplySpecs) -> None:
        await service.apply_command(rt, command, consumer)
