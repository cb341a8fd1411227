"""A pause in the read marks, told from a scheduler that reads behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sous_scheduler.domain.leases import pause

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(*seconds: float) -> list[datetime]:
    return [T0 + timedelta(seconds=s) for s in seconds]


def test_marks_a_second_apart_are_no_pause_however_many_come_in_one_batch() -> None:
    assert pause({0: T0}, {0: at(*range(1, 60))}, interval_s=1.0) is None


def test_the_longest_jump_of_any_partition_is_the_pause() -> None:
    read = {0: at(1, 2, 12), 1: at(1, 31)}
    assert pause({0: T0, 1: T0}, read, interval_s=1.0) == timedelta(seconds=30)


def test_a_jump_from_the_mark_read_before_counts_and_a_partition_never_read_does_not() -> None:
    assert pause({0: T0}, {0: at(20)}, interval_s=1.0) == timedelta(seconds=20)
    assert pause({}, {0: at(20)}, interval_s=1.0) is None


def test_a_jump_within_a_few_intervals_is_no_pause() -> None:
    assert pause({0: T0}, {0: at(3)}, interval_s=1.0) is None
    assert pause({0: T0}, {0: at(3.5)}, interval_s=1.0) == timedelta(seconds=3.5)
    assert pause({0: T0}, {0: at(9)}, interval_s=5.0) is None


def test_marks_of_a_replica_whose_clock_is_behind_make_no_pause() -> None:
    """Two replicas mark the partition, one 5 s behind the other; both keep marking."""
    ahead = at(10)
    for second in range(11, 20):
        behind = at(second - 6)
        assert pause({0: ahead[0]}, {0: behind}, interval_s=1.0) is None
        assert pause({0: ahead[0]}, {0: at(second)}, interval_s=1.0) is None
        ahead = at(second)
