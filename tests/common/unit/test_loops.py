"""Background loops: an outage is logged once when it begins and once when it ends."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from sous_common.loops import every


async def test_an_outage_is_logged_once_and_its_end_once_a_bug_every_time() -> None:
    outcomes: list[BaseException | None] = [
        ConnectionRefusedError("database down"),
        *[OSError("still down")] * 20,
        None,
        ValueError("a bug"),
        ValueError("a bug"),
    ]
    done = asyncio.Event()

    async def work() -> None:
        if not outcomes:
            done.set()
            return
        if (outcome := outcomes.pop(0)) is not None:
            raise outcome

    with capture_logs() as logs:
        loop = asyncio.create_task(every(0, work, "timers"))
        await asyncio.wait_for(done.wait(), 5)  # every outcome was seen by the loop
        loop.cancel()
    events = [(e["log_level"], e["event"]) for e in logs]
    assert events == [
        ("warning", "background loop paused: transient failure"),
        ("info", "background loop recovered"),
        ("error", "background loop failed"),
        ("error", "background loop failed"),
    ]
