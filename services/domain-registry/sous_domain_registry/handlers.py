"""Subscribers: spec bundles to apply, and the read model's run, step and test events."""

from __future__ import annotations

from sous_common.runtime import Runtime
from sous_contracts.backfills import BackfillRejected, BackfillUpdated
from sous_contracts.flows import RunFlow
from sous_contracts.registry import ApplySpecs
from sous_contracts.topics import REGISTRY_COMMANDS, RUN_EVENTS, STEP_EVENTS, TEST_RESULTS
from sous_domain_registry import backfills, runs, service


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
