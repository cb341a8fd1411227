"""Whether a ready step runs: its needs' skips and its `when:` condition."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sous_common.conditions import ConditionError, evaluate
from sous_contracts.specs import StepSpec
from sous_scheduler.domain.state import RunState, StepPhase


@dataclass(frozen=True)
class Skip:
    """The step does not run; the reason, and for a false condition what it saw."""

    reason: str
    when: str | None = None
    seen: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Broken:
    """The condition could not be evaluated: the step fails with this error."""

    error: str


def condition_values(state: RunState, spec: StepSpec, params: dict[str, Any]) -> dict[str, Any]:
    """What a condition reads: params, the steps it needs, the triggering event and the run.

    Only needed steps are there: they have ended, so the values are the same on every replay.
    """
    steps = {
        n: {
            "outputs": state.step(n).outputs.values,
            "tests": state.step(n).tests.model_dump(),
            "status": state.step(n).phase.value,
        }
        for n in spec.needs
    }
    run = {
        "id": str(state.order_run_id),
        "domain": state.domain,
        "recipe": state.recipe,
        "variation": state.variation,
        "kitchen": state.kitchen,
    }
    return {"params": params, "steps": steps, "event": state.trigger_event, "run": run}


def gate(
    state: RunState, name: str, spec: StepSpec, params: dict[str, Any]
) -> Skip | Broken | None:
    """Return why a ready step must not run, or None when it runs."""
    skipped = [n for n in spec.needs if state.step(n).phase is StepPhase.SKIPPED]
    if skipped and spec.if_needs_skipped == "skip":
        return Skip(f"needed step(s) skipped: {', '.join(skipped)}")
    if spec.when is None:
        return None
    try:
        verdict = evaluate(spec.when, condition_values(state, spec, params))
    except ConditionError as exc:
        return Broken(f"step '{name}': when {spec.when!r}: {exc}")
    if verdict.value:
        return None
    saw = ", ".join(f"{k} = {json.dumps(v)}" for k, v in verdict.seen.items()) or "no values"
    return Skip(f"when {spec.when!r} was false ({saw})", spec.when, verdict.seen)
