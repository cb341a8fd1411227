"""Kind `history`: a step output against its values in the last runs of the same variation."""

from __future__ import annotations

from sous_contracts.specs.tests import HistoryCheck
from sous_test_runner.domain.compare import as_number
from sous_test_runner.domain.history import judge_history
from sous_test_runner.domain.outcome import Outcome
from sous_test_runner.kinds.base import TestContext, register
from sous_test_runner.kinds.metric import output_value


@register("history", HistoryCheck)
async def run_history(check: HistoryCheck, ctx: TestContext) -> Outcome:
    """Judge `outputs.values[output]` against the test's recorded values."""
    raw = output_value(ctx, check.output)
    try:
        value = float(as_number(raw))
    except ValueError:
        return Outcome.error(f"output {check.output!r} is {raw!r}, not a number")
    earlier = await ctx.history(ctx.series, check.last)
    return judge_history(
        value,
        earlier,
        min_history=check.min_history,
        within_pct=check.within_pct,
        max_z=check.max_z,
    )
