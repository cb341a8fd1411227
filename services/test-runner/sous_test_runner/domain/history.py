"""Judging a value against the values of earlier runs: within a percentage or a z-score."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from sous_test_runner.domain.compare import jsonable
from sous_test_runner.domain.outcome import Outcome


def judge_history(
    value: float,
    earlier: Sequence[float],
    *,
    min_history: int,
    within_pct: float | None,
    max_z: float | None,
) -> Outcome:
    """Compare `value` with `earlier` values (newest first) by percentage and/or z-score.

    Fewer than `min_history` earlier values pass with a note; a check naming neither bound
    cannot judge and is an error.
    """
    if within_pct is None and max_z is None:
        return Outcome.error("history check needs `within_pct` or `max_z`")
    if len(earlier) < min_history:
        return Outcome.passed(
            f"only {len(earlier)} earlier run(s), {min_history} needed; not judged yet",
            value=jsonable(value),
        )
    mean = statistics.fmean(earlier)
    threshold: dict[str, float] = {"mean": mean, "runs": len(earlier)}
    problems: list[str] = []
    notes: list[str] = []
    if within_pct is not None:
        threshold["within_pct"] = within_pct
        if mean == 0:
            deviation = 0.0 if value == 0 else float("inf")
        else:
            deviation = abs(value - mean) / abs(mean) * 100
        text = f"{deviation:.1f}% from mean {mean:g} (allowed {within_pct:g}%)"
        (problems if deviation > within_pct else notes).append(text)
    if max_z is not None:
        threshold["max_z"] = max_z
        stdev = statistics.pstdev(earlier) if len(earlier) > 1 else 0.0
        threshold["stdev"] = stdev
        z = _z_score(value, mean, stdev)
        text = f"z-score {z:.2f} (allowed {max_z:g}, mean {mean:g}, stdev {stdev:g})"
        (problems if z > max_z else notes).append(text)
    message = f"value {value:g}: " + "; ".join(problems or notes)
    return Outcome.judged(not problems, message, jsonable(value), threshold)


def _z_score(value: float, mean: float, stdev: float) -> float:
    if stdev > 0:
        return abs(value - mean) / stdev
    # Every earlier value was the same: only that value passes.
    return 0.0 if value == mean else float("inf")
