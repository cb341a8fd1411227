"""The registry catch-up a command waits for: a failed one counts as none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from sous_scheduler.service import Scheduler
from sous_scheduler.settings import SchedulerSettings

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def scheduler(outcomes: list[BaseException | None]) -> tuple[Scheduler, list[datetime]]:
    clock = Clock()
    s = Scheduler(cast(Any, None), cast(SchedulerSettings, None), clock=clock)
    calls: list[datetime] = []

    async def refresh() -> int:
        calls.append(clock.now)
        if outcome := outcomes.pop(0):
            raise outcome
        return 0

    s.refresh_registry = refresh
    return s, calls


async def test_a_failed_catch_up_is_retried_by_the_next_command() -> None:
    s, calls = scheduler([OSError("broker down"), None])
    with pytest.raises(OSError, match="broker down"):
        await s.refresh(since=T0)
    assert await s.refresh(since=T0) is True
    assert len(calls) == 2, "the second command must not trust a catch-up that failed"


async def test_a_finished_catch_up_newer_than_the_command_is_not_repeated() -> None:
    s, calls = scheduler([None])
    assert await s.refresh(since=T0) is True
    assert await s.refresh(since=T0) is True
    assert len(calls) == 1
