"""Leases across outages: a pause in the read marks pauses every lease with it.

A lease expires only once every partition of the step events is read past its deadline
(DESIGN §5.10). Marks stop when the scheduler cannot write them: the broker is away, or the
scheduler is. Executors could not send heartbeats for as long, and after the pause the first
marks may reach the topic before their next heartbeats. So when the marks of a partition jump
by more than a few intervals, the leases are moved on by that jump, giving every healthy
executor a whole lease to be heard again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from itertools import pairwise

PAUSE_INTERVALS = 3
"""Marks further apart than this many mark intervals mean marks could not be written."""


def pause(
    before: Mapping[int, datetime], read: Mapping[int, Sequence[datetime]], interval_s: float
) -> timedelta | None:
    """The longest pause between two marks of a partition read one after the other, if any.

    `before` holds the partitions' last marks read (those with one), `read` every mark of a
    batch by partition. A scheduler that reads behind gets many marks in one batch, each
    close to the one before it: no pause.
    """
    longest = timedelta(0)
    for p, marks in read.items():
        last = before.get(p)
        # Marks behind the one read before move nothing: another replica's, whose clock
        # is behind, or written before a slower one.
        ahead = sorted(m for m in marks if last is None or m > last)
        for earlier, later in pairwise([last, *ahead] if last is not None else ahead):
            longest = max(longest, later - earlier)
    return longest if longest > timedelta(seconds=PAUSE_INTERVALS * interval_s) else None
