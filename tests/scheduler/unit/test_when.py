"""decide() with step conditions: skips with their reason, skipped dependants, errors."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sous_contracts.common import Outputs, StepStatus
from sous_contracts.specs import RecipeSpec
from sous_contracts.steps import StepFinished, StepSkipped
from sous_scheduler.domain.decide import decide
from sous_scheduler.domain.events import Begin, Context
from sous_scheduler.domain.state import RunPhase, RunState, StepPhase, StepState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RUN = uuid.UUID(int=1)


def recipe(**overrides: Any) -> RecipeSpec:
    # `report` comes before the step it needs: a skip must still reach it.
    steps: dict[str, Any] = {
        "report": {"needs": ["publish"], "run": {"kind": "noop"}},
        "ingest": {"run": {"kind": "noop"}},
        "publish": {
            "needs": ["ingest"],
            "run": {"kind": "noop"},
            "when": "steps.ingest.outputs.rows > 0 && params.full_refresh == false",
        },
        "audit": {"needs": ["ingest"], "run": {"kind": "noop"}, "when": "params.full_refresh"},
    }
    for name, extra in overrides.items():
        steps[name] = {**steps[name], **extra}
    return RecipeSpec.model_validate(
        {
            "recipe": "daily",
            "params": {"full_refresh": {"type": "boolean", "default": False}},
            "steps": steps,
        }
    )


def ctx() -> Context:
    counter = itertools.count(100)
    return Context(now=T0 + timedelta(seconds=1), new_id=lambda: uuid.UUID(int=next(counter)))


def started(spec: RecipeSpec, full_refresh: bool = False) -> RunState:
    run = RunState(
        order_run_id=RUN,
        domain="sales",
        recipe="daily",
        variation="prod",
        kitchen="prod",
        params={"full_refresh": full_refresh},
        steps={
            n: StepState(name=n, step_run_id=uuid.UUID(int=10 + i))
            for i, n in enumerate(spec.steps)
        },
    )
    return decide(run, spec, Begin(), ctx()).state


def ingest_done(spec: RecipeSpec, state: RunState, outputs: dict[str, Any]):
    return decide(
        state,
        spec,
        StepFinished(
            order_run_id=RUN,
            step_run_id=state.step("ingest").step_run_id,
            step="ingest",
            attempt=1,
            worker_id="w1",
            status=StepStatus.SUCCEEDED,
            outputs=Outputs(values=outputs),
        ),
        ctx(),
    )


def test_a_false_condition_skips_with_the_expression_and_values_and_skips_dependants() -> None:
    spec = recipe()
    d = ingest_done(spec, started(spec), {"rows": 0})
    skips = [m for m in d.messages if isinstance(m, StepSkipped)]
    assert [s.step for s in skips] == ["publish", "audit", "report"]
    publish = skips[0]
    assert publish.when == "steps.ingest.outputs.rows > 0 && params.full_refresh == false"
    assert publish.seen == {"steps.ingest.outputs.rows": 0, "params.full_refresh": False}
    assert "steps.ingest.outputs.rows = 0" in publish.reason
    assert skips[2].reason == "needed step(s) skipped: publish"
    assert d.state.step("report").phase is StepPhase.SKIPPED
    assert d.state.phase is RunPhase.SUCCEEDED  # succeeded and skipped steps only


def test_a_true_condition_runs_the_step() -> None:
    spec = recipe()
    d = ingest_done(spec, started(spec), {"rows": 5})
    assert d.state.step("publish").phase is StepPhase.DISPATCHED
    assert d.state.step("audit").phase is StepPhase.SKIPPED
    assert [m.step for m in d.messages if m.type == "ExecuteStep"] == ["publish"]


def test_a_dependant_may_run_when_its_need_was_skipped() -> None:
    spec = recipe(report={"if_needs_skipped": "run"})
    d = ingest_done(spec, started(spec), {"rows": 0})
    assert d.state.step("publish").phase is StepPhase.SKIPPED
    assert d.state.step("report").phase is StepPhase.DISPATCHED


def test_an_evaluation_error_fails_the_step_with_the_error() -> None:
    spec = recipe()
    d = ingest_done(spec, started(spec), {"other": 1})
    publish = d.state.step("publish")
    assert publish.phase is StepPhase.FAILED
    assert publish.reason == (
        "step 'publish': when 'steps.ingest.outputs.rows > 0 && params.full_refresh == false': "
        "no such member in mapping: 'rows'"
    )
    assert d.state.phase is RunPhase.FAILED


def test_the_same_input_gives_the_same_skip() -> None:
    spec = recipe()
    state = started(spec)
    assert (
        ingest_done(spec, state, {"rows": 0}).messages
        == ingest_done(spec, state, {"rows": 0}).messages
    )


def test_a_condition_reads_the_triggering_event() -> None:
    spec = recipe(audit={"when": "event.params.day == '2026-01-01' && run.kitchen == 'prod'"})
    state = started(spec).model_copy(update={"trigger_event": {"params": {"day": "2026-01-01"}}})
    d = ingest_done(spec, state, {"rows": 0})
    assert d.state.step("audit").phase is StepPhase.DISPATCHED
