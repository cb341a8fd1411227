"""A pause in the read marks, told from a scheduler that reads behind or beside another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sous_scheduler.domain.leases import paused_since

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(*seconds: float) -> list[datetime]:
    return [T0 + timedelta(seconds=s) for s in seconds]


def test_marks_a_second_apart_are_no_pause_however_many_come_in_one_batch() -> None:
    assert paused_since({0: T0}, {0: at(*range(1, 60))}, interval_s=1.0) is None


def test_the_pause_begins_at_the_earliest_mark_before_a_jump_of_any_partition() -> None:
    read = {0: at(11, 12, 22), 1: at(1, 31)}
    assert paused_since({0: at(10)[0], 1: T0}, read, interval_s=1.0) == at(1)[0]


def test_a_jump_from_the_mark_read_before_counts_and_a_partition_never_read_does_not() -> None:
    assert paused_since({0: T0}, {0: at(20)}, interval_s=1.0) == T0
    assert paused_since({}, {0: at(20)}, interval_s=1.0) is None


def test_a_jump_within_a_few_intervals_is_no_pause() -> None:
    assert paused_since({0: T0}, {0: at(3)}, interval_s=1.0) is None
    assert paused_since({0: T0}, {0: at(3.5)}, interval_s=1.0) == T0
    assert paused_since({0: T0}, {0: at(9)}, interval_s=5.0) is None


def test_marks_of_a_replica_whose_clock_is_behind_make_no_pause() -> None:
    """Two replicas mark the partition, one 5 s behind the other; both keep marking."""
    ahead = at(10)
    for second in range(11, 20):
        assert paused_since({0: ahead[0]}, {0: at(second - 6)}, interval_s=1.0) is None
        assert paused_since({0: ahead[0]}, {0: at(second)}, interval_s=1.0) is None
        ahead = at(second)
