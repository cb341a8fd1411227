"""Library log floods are held back to one line of each kind per window."""

from __future__ import annotations

import logging

from sous_common.logs import Repeats


def record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_one_line_of_a_kind_per_window_then_a_count_of_the_rest() -> None:
    now = [0.0]
    repeats = Repeats(window_s=10, clock=lambda: now[0])
    lines = []
    for i in range(1000):  # a retry loop: the same template, other arguments
        now[0] = i * 0.01
        r = record("aiokafka", "Unable connect to node with id %s: %s", 1, i)
        if repeats.filter(r):
            lines.append(r.getMessage())
    assert lines == ["Unable connect to node with id 1: 0"]
    now[0] = 12.0
    later = record("aiokafka", "Unable connect to node with id %s: %s", 1, "again")
    assert repeats.filter(later)
    assert later.getMessage() == (
        "Unable connect to node with id 1: again (999 more like this in the last 12 s)"
    )


def test_other_kinds_pass_on_their_own() -> None:
    repeats = Repeats(window_s=10, clock=lambda: 0.0)
    assert repeats.filter(record("aiokafka", "a %s", 1))
    assert repeats.filter(record("aiokafka", "b %s", 1))
    assert repeats.filter(record("aiokafka", "a %s", 1, level=logging.WARNING))
    assert repeats.filter(record("asyncpg", "a %s", 1))
    assert not repeats.filter(record("aiokafka", "a %s", 2))
