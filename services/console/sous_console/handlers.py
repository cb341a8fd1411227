"""Thin subscribers: each topic's messages go to their read-model write."""

from __future__ import annotations

from typing import Any

from sous_common.runtime import Runtime
from sous_console import backfills, projection
from sous_console.service import apply
from sous_contracts.backfills import BackfillRejected, BackfillUpdated
from sous_contracts.flows import Outside, RunFlow
from sous_contracts.runs import (
    DomainRunCompleted,
    JoinWindowExpired,
)
from sous_contracts.steps import (
    StepFinished,
    StepSkipped,
    StepStarted,
)
from sous_contracts.tests import TestResult
from sous_contracts.topics import (
    DOMAIN_EVENTS,
    REGISTRY_CHANGELOG,
    RUN_EVENTS,
    STEP_EVENTS,
    TEST_RESULTS,
)


def register(rt: Runtime, *, consumers: int = 1) -> None:
    """Subscribe the console's consumer group to the five topics it shows.

    The three busy topics share `consumers` consumers (members of the group), so runs on
    different partitions are applied side by side; a partition keeps its order.
    """
    options = rt.subscriber_options()
    # Each consumer reads several topics: one fetch loop and one group member, whose
    # heartbeats cost the broker too, for what were a consumer per topic. FastStream takes
    # several topics only in a subscriber of one consumer, hence one subscriber per consumer.
    for _ in range(consumers):
        _subscribe_run_flow(rt, options)

    @rt.broker.subscriber(rt.topic(DOMAIN_EVENTS), rt.topic(REGISTRY_CHANGELOG), **options)
    async def on_outside(message: Outside) -> None:
        if isinstance(message, DomainRunCompleted):
            await apply(rt, message, projection.completion)
        else:
            await apply(rt, message, projection.entity)


def _subscribe_run_flow(rt: Runtime, options: dict[str, Any]) -> None:
    @rt.broker.subscriber(
        rt.topic(RUN_EVENTS), rt.topic(STEP_EVENTS), rt.topic(TEST_RESULTS), **options
    )
    async def on_run_flow(event: RunFlow) -> None:
        if isinstance(event, BackfillUpdated):
            await apply(rt, event, backfills.backfill_updated)
        elif isinstance(event, BackfillRejected):
            await apply(rt, event, backfills.backfill_rejected)
        elif isinstance(event, JoinWindowExpired):
            await apply(rt, event, backfills.join_expired)
        elif isinstance(event, StepStarted | StepFinished):
            await apply(rt, event, projection.step_event)
        elif isinstance(event, StepSkipped):
            await apply(rt, event, projection.step_skipped)
        elif isinstance(event, TestResult):  # suite summaries are counted from their results
            await apply(rt, event, projection.test_result)
        elif isinstance(event, projection.RunEvent):
            await apply(rt, event, projection.run_event)
        # Repeated keys and held triggers have no run to show yet; heartbeats, read marks
        # and suite summaries show nothing.
