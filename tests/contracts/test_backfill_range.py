"""The one range expansion of backfills: partitions in order, refusals that say why."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sous_contracts.backfills import (
    MAX_PARTITIONS,
    BackfillRange,
    RangeError,
    StartBackfill,
    expand,
    parse_range,
)


@pytest.mark.parametrize(
    ("text", "step", "values"),
    [
        ("day=2026-11-01..2026-11-03", None, ["2026-11-01", "2026-11-02", "2026-11-03"]),
        ("day=2026-11-01..2026-11-15", "7d", ["2026-11-01", "2026-11-08", "2026-11-15"]),
        ("day=2026-11-01..2026-11-20", "1w", ["2026-11-01", "2026-11-08", "2026-11-15"]),
        ("day=2026-02-27..2026-03-01", "1d", ["2026-02-27", "2026-02-28", "2026-03-01"]),
        ("day=2026-11-01..2026-11-01", None, ["2026-11-01"]),
        ("batch=1..5", None, [1, 2, 3, 4, 5]),
        ("batch=0..10", "5", [0, 5, 10]),
        ("batch=-2..1", None, [-2, -1, 0, 1]),
    ],
)
def test_ranges_expand_in_order(text: str, step: str | None, values: list) -> None:
    assert expand(parse_range(text, step)) == values


@pytest.mark.parametrize(
    ("text", "step", "words"),
    [
        ("day=2026-11-30..2026-11-01", None, "day=2026-11-30..2026-11-01: the end is before"),
        ("batch=5..1", None, "batch=5..1: the end is before the start"),
        ("day=2026-11-01..2026-11-30", "1h", "step '1h' is not a date step (like 1d, 7d or 2w)"),
        ("day=2026-11-01..2026-11-30", "0d", "step '0d' is not a date step"),
        ("batch=1..9", "1d", "step '1d' is not a positive integer"),
        ("batch=1..9", "0", "step '0' is not a positive integer"),
        ("day=2026-11-01..9", None, "start and end must both be dates or both be integers"),
        ("day=2026-11-01..2026-13-01", None, "end '2026-13-01' is neither an ISO date nor"),
        ("batch=0..10000", None, f"10001 partitions, more than the limit of {MAX_PARTITIONS}"),
        ("day=2026-11-01", None, "is not PARAM=START..END"),
        ("2026-11-01..2026-11-02", None, "is not PARAM=START..END"),
        ("Day=1..2", None, "'Day' is not a parameter name"),
    ],
)
def test_bad_ranges_are_refused_with_their_reason(text: str, step: str | None, words: str) -> None:
    with pytest.raises(RangeError, match=None) as caught:
        parse_range(text, step)
    assert words in str(caught.value)


def test_a_command_with_a_bad_range_is_invalid() -> None:
    with pytest.raises(ValidationError, match="the end is before the start"):
        StartBackfill(
            backfill_id="01890a5d-ac96-774b-bcce-b302099a805a",
            domain="sales",
            recipe="daily",
            range=BackfillRange(param="day", start="2026-11-02", end="2026-11-01"),
        )


def test_the_largest_range_is_allowed() -> None:
    assert len(expand(BackfillRange(param="n", start="1", end=str(MAX_PARTITIONS)))) == 10_000
