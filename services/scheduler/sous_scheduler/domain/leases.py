"""Leases across outages: after a pause in the read marks, every lease gets a whole lease more.

A lease expires only once every partition of the step events is read past its deadline
(DESIGN §5.10). Marks stop when they cannot be written: the broker is away. Executors could
not send heartbeats for as long, and after the pause the first marks may reach the topic
before their next heartbeats. So when the marks of a partition jump by more than a few
intervals, every lease still running at the last mark before the jump is moved to a whole
lease after now: each healthy executor gets a lease to be heard again, and one that died
meanwhile is declared lost a lease after the pause, never later. Doing it twice (two
replicas, two batches) changes nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from itertools import pairwise

PAUSE_INTERVALS = 3
"""Marks further apart than this many mark intervals mean marks could not be written."""


def paused_since(
    before: Mapping[int, datetime], read: Mapping[int, Sequence[datetime]], interval_s: float
) -> datetime | None:
    """The last mark before a pause in any partition's marks (the earliest, if several).

    `before` holds the partitions' last marks read (those with one), `read` every mark of a
    batch by partition; None when no two marks read one after the other are a pause apart.
    A scheduler that reads behind gets many marks in one batch, each close to the one before
    it: no pause. Marks behind the one read before move nothing: another replica's, whose
    clock is behind, or written before a slower one.
    """
    pause = timedelta(seconds=PAUSE_INTERVALS * interval_s)
    since: datetime | None = None
    for p, marks in read.items():
        last = before.get(p)
        ahead = sorted(m for m in marks if last is None or m > last)
        for earlier, later in pairwise([last, *ahead] if last is not None else ahead):
            if later - earlier > pause and (since is None or earlier < since):
                since = earlier
    return since
