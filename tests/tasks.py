"""Stopping a test's background task for sure."""

from __future__ import annotations

import asyncio


async def cancel(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait until it has ended; raise what it failed with, if anything.

    One cancel is not always enough: aiokafka swallows a CancelledError that lands in some
    of its waits (a producer's stop, a coordinator's request), and a loop around it goes on.
    So the cancel is repeated until the task has ended.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=1)
    if not task.cancelled() and (error := task.exception()) is not None:
        raise error
