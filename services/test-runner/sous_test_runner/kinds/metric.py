"""Kinds reading the step's outputs: `metric` compares one output value to a threshold."""

from __future__ import annotations

from typing import Any

from sous_contracts.specs.tests import MetricCheck
from sous_test_runner.domain.compare import compare, describe, jsonable
from sous_test_runner.domain.outcome import Outcome
from sous_test_runner.kinds.base import TestContext, register


class MissingOutput(LookupError):
    """The step did not publish the output a check reads."""


def output_value(ctx: TestContext, key: str) -> Any:
    """Return one output value of the step, or raise `MissingOutput` naming what exists."""
    values = ctx.outputs.values
    if key not in values:
        known = ", ".join(sorted(values)) or "none"
        raise MissingOutput(f"the step has no output {key!r} (outputs: {known})")
    return values[key]


@register("metric", MetricCheck)
async def run_metric(check: MetricCheck, ctx: TestContext) -> Outcome:
    """Compare `outputs.values[output]` with the check's value."""
    value = output_value(ctx, check.output)
    holds = compare(value, check.op, check.value)
    message = describe(check.output, value, check.op, check.value)
    return Outcome.judged(holds, message, jsonable(value), jsonable(check.value))
