"""`tests.tasks.cancel` ends a task that swallows a cancel, and passes on what a task raised."""

from __future__ import annotations

import asyncio

import pytest

from tests.tasks import cancel


async def test_a_task_that_swallows_a_cancel_is_cancelled_again_until_it_ends() -> None:
    swallowed = []
    waiting = asyncio.Event()

    async def loop_around_a_swallowing_wait() -> None:
        while True:
            try:
                waiting.set()
                await asyncio.sleep(3600)
            except asyncio.CancelledError:  # as aiokafka does in some of its waits
                swallowed.append(1)
                if len(swallowed) == 1:
                    continue
                raise

    task = asyncio.create_task(loop_around_a_swallowing_wait())
    await waiting.wait()  # the cancel lands in the wait, not before the task has begun
    async with asyncio.timeout(10):
        await cancel(task)
    assert task.cancelled()
    assert len(swallowed) == 2


async def test_what_the_task_failed_with_is_raised() -> None:
    async def fails() -> None:
        raise ValueError("broken stand-in")

    task = asyncio.create_task(fails())
    await asyncio.wait([task])  # it has failed before it is cancelled
    with pytest.raises(ValueError, match="broken stand-in"):
        await cancel(task)
