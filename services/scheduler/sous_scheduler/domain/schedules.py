"""Cron fire times and the missed-fire policy: pure functions of a schedule and the clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from sous_contracts.specs import ScheduleSpec

ON_TIME = timedelta(seconds=60)
"""A fire this late still counts as on time rather than missed."""


def fire_times(spec: ScheduleSpec, after: datetime, until: datetime) -> list[datetime]:
    """Fire times in (after, until], in the schedule's time zone.

    A wall-clock time that happens twice (clocks going back) fires once, at its first instant.
    """
    zone = ZoneInfo(spec.timezone)
    start = after.astimezone(zone)
    it = croniter(spec.cron, start)
    out: list[datetime] = []
    wall = start.replace(tzinfo=None)
    while (t := it.get_next(datetime)) <= until:
        if t.replace(tzinfo=None) == wall:
            continue
        wall = t.replace(tzinfo=None)
        out.append(t)
        if len(out) > 10_000:  # a tight cron over a long outage: enough to decide
            break
    return out


def previous_fire(spec: ScheduleSpec, now: datetime) -> datetime:
    """The last fire time at or before now."""
    zone = ZoneInfo(spec.timezone)
    result: datetime = croniter(spec.cron, now.astimezone(zone)).get_prev(datetime)
    return result


@dataclass(frozen=True)
class Due:
    """What a look at a schedule decides.

    `skipped` are fire times to record without a run; `fire` is the one that starts a run.
    """

    skipped: list[datetime] = field(default_factory=list)
    fire: datetime | None = None


def due(spec: ScheduleSpec, last: datetime | None, now: datetime) -> Due:
    """Decide what is due of a schedule last fired (or first seen) at `last`.

    A schedule seen for the first time records its last fire time before now without a run,
    so it does not replay history. Of the fire times since `last`, all but the latest are
    missed (recorded, never run one by one); the latest runs when on time, or when the
    schedule's `missed` policy is `run_once`.
    """
    if last is None:
        return Due(skipped=[previous_fire(spec, now)])
    times = fire_times(spec, last, now)
    if not times:
        return Due()
    latest = times[-1]
    if spec.missed == "run_once" or now - latest <= ON_TIME:
        return Due(skipped=times[:-1], fire=latest)
    return Due(skipped=times)
