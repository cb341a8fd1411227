"""The messages that announce a run's start and end."""

from __future__ import annotations

from typing import Any

from sous_contracts.common import DatasetRef, Outputs, RunStatus
from sous_contracts.runs import (
    DomainRunCompleted,
    OrderRunFinished,
    OrderRunStarted,
    StepDatasets,
)
from sous_scheduler.domain.events import ClearTimer, Context, Decision
from sous_scheduler.domain.state import RunPhase, RunState


def _common(state: RunState, ctx: Context) -> dict[str, Any]:
    return {
        "producer": "scheduler",
        "correlation_id": state.correlation_id or state.order_run_id,
        "causation_id": ctx.cause_id,
        "occurred_at": ctx.now,
        "order_run_id": state.order_run_id,
        "domain": state.domain,
        "recipe": state.recipe,
        "variation": state.variation,
        "kitchen": state.kitchen,
    }


def started(state: RunState, ctx: Context) -> OrderRunStarted:
    """Return the OrderRunStarted of a run."""
    return OrderRunStarted(
        **_common(state, ctx),
        params=state.params,
        spec_version=state.spec_version,
        parent_order_run_id=state.parent_order_run_id,
        backfill_id=state.backfill_id,
        cause=state.cause,
    )


def run_outputs(state: RunState) -> Outputs:
    """Outputs of the run: every step's values (later steps win) and datasets."""
    values: dict[str, Any] = {}
    datasets: list[DatasetRef] = []
    for step in state.steps.values():
        values.update(step.outputs.values)
        datasets.extend(step.outputs.datasets)
    return Outputs(values=values, datasets=datasets)


def step_datasets(state: RunState) -> list[StepDatasets]:
    """The datasets each step read and wrote, for the steps that have any."""
    return [
        StepDatasets(
            step=s.name,
            status=s.phase.value,
            inputs=s.reads,
            outputs=s.written,
            tests=s.tests,
        )
        for s in state.steps.values()
        if s.reads or s.written
    ]


def finish(d: Decision, ctx: Context, phase: RunPhase, reason: str | None) -> None:
    """End the run: OrderRunFinished on the run topic, DomainRunCompleted on the domain topic."""
    d.state = d.state.model_copy(update={"phase": phase, "reason": reason, "finished_at": ctx.now})
    status = RunStatus(phase.value)
    outputs, tests = run_outputs(d.state), d.state.tests_total()
    d.messages.append(
        OrderRunFinished(
            **_common(d.state, ctx),
            status=status,
            reason=reason,
            started_at=d.state.started_at,
            outputs=outputs,
            tests=tests,
            parent_order_run_id=d.state.parent_order_run_id,
            datasets=step_datasets(d.state),
            backfill_id=d.state.backfill_id,
        )
    )
    d.messages.append(
        DomainRunCompleted(
            **_common(d.state, ctx),
            status=status,
            params=d.state.params,
            outputs=outputs,
            tests=tests,
            spec_version=d.state.spec_version,
            causation_depth=d.state.causation_depth,
            backfill_id=d.state.backfill_id,
            fire_triggers=d.state.fire_triggers,
        )
    )
    d.timers.append(ClearTimer("run_timeout", None))
