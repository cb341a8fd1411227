"""Cron fire times: the window's bounds, time zones, daylight saving, long outages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sous_contracts.specs import ScheduleSpec
from sous_scheduler.domain.schedules import Due, due, fire_times, previous_fire


def at(day: int, hour: int, minute: int = 0, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def spec(cron: str, timezone: str = "UTC") -> ScheduleSpec:
    return ScheduleSpec(cron=cron, timezone=timezone)


@pytest.mark.parametrize(
    ("cron", "after", "until", "expected"),
    [
        ("0 * * * *", at(1, 10), at(1, 10, 59), []),
        ("0 * * * *", at(1, 10), at(1, 11), [at(1, 11)]),  # the end is in the window
        ("0 * * * *", at(1, 10, 30), at(1, 13), [at(1, 11), at(1, 12), at(1, 13)]),
        ("*/15 * * * *", at(1, 10), at(1, 10, 40), [at(1, 10, 15), at(1, 10, 30)]),
        ("0 6 * * 1", at(1, 0), at(14, 0), [at(5, 6), at(12, 6)]),  # Mondays
        ("0 0 1 * *", at(15, 0), at(1, 0, month=3), [at(1, 0, month=2), at(1, 0, month=3)]),
    ],
)
def test_fire_times_are_those_after_the_start_up_to_the_end(cron, after, until, expected) -> None:
    assert fire_times(spec(cron), after, until) == expected


def test_a_cron_is_read_in_the_schedule_s_time_zone() -> None:
    nine = spec("0 9 * * *", "Europe/Berlin")
    assert fire_times(nine, at(1, 0), at(2, 12)) == [at(1, 8), at(2, 8)]  # winter: UTC+1
    assert fire_times(nine, at(1, 0, month=7), at(1, 12, month=7)) == [at(1, 7, month=7)]


def test_daylight_saving_neither_drops_nor_doubles_a_daily_fire() -> None:
    # 02:30 does not exist in Berlin on 29 March 2026 and happens twice on 25 October.
    nightly = spec("30 2 * * *", "Europe/Berlin")
    spring = fire_times(nightly, at(28, 0, month=3), at(31, 0, month=3))
    autumn = fire_times(nightly, at(24, 0, month=10), at(27, 0, month=10))
    assert [t.day for t in spring] == [28, 29, 30]
    assert [t.day for t in autumn] == [24, 25, 26]


def test_a_tight_cron_over_a_long_outage_is_bounded() -> None:
    due = fire_times(spec("* * * * *"), at(1, 0), at(1, 0, month=6))
    assert 10_000 <= len(due) <= 10_001
    assert due[0] == at(1, 0, 1)


def test_previous_fire_is_the_last_one_before_now() -> None:
    assert previous_fire(spec("0 * * * *"), at(1, 10, 30)) == at(1, 10)
    assert previous_fire(spec("0 9 * * *", "Europe/Berlin"), at(2, 7)) == at(1, 8)


def test_the_repeated_wall_time_does_not_fire_after_its_first_instant() -> None:
    # The first 02:30 (00:30 UTC) fired; the second (01:30 UTC) is the same wall time.
    nightly = spec("30 2 * * *", "Europe/Berlin")
    assert fire_times(nightly, at(25, 0, 30, month=10), at(26, 0, month=10)) == []


def test_a_schedule_seen_first_records_its_last_fire_without_a_run() -> None:
    what = due(spec("0 * * * *"), None, at(1, 10, 30))
    assert what == Due(skipped=[at(1, 10)])


def test_an_on_time_fire_runs() -> None:
    what = due(spec("0 * * * *"), at(1, 10), at(1, 11, 1))
    assert what == Due(fire=at(1, 11))


def test_missed_fires_are_recorded_and_the_latest_runs_only_when_on_time_or_asked() -> None:
    late = at(1, 13, 5)  # 11, 12 and 13 o'clock were missed; 13 is five minutes late
    assert due(spec("0 * * * *"), at(1, 10), late) == Due(skipped=[at(1, 11), at(1, 12), at(1, 13)])
    once = ScheduleSpec(cron="0 * * * *", missed="run_once")
    assert due(once, at(1, 10), late) == Due(skipped=[at(1, 11), at(1, 12)], fire=at(1, 13))
    assert due(spec("0 * * * *"), at(1, 13), late) == Due()
