"""Several replicas in one group and one schema (stopping one: test_shutdown)."""

from __future__ import annotations

import asyncio

import pytest

from sous_contracts.common import StepStatus
from sous_contracts.steps import StepFinished, StepStarted
from tests.executor.conftest import execute

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_two_replicas_share_the_work_and_never_take_one_attempt_twice(
    harness, start_executor
) -> None:
    async with (
        start_executor(worker_id="replica-a") as a,
        start_executor(worker_id="replica-b") as b,
    ):
        commands = [execute("noop") for _ in range(40)]
        for c in commands:
            await harness.send(c)
        finished = [await harness.finished(c) for c in commands]
        # The same attempt offered to both replicas again (a redelivery after a rebalance).
        await asyncio.gather(a.execute(commands[0]), b.execute(commands[0]))
        probe = await harness.run(execute("noop", order_run_id=commands[0].order_run_id))
    assert probe.status == StepStatus.SUCCEEDED
    assert {f.worker_id for f in finished} == {"replica-a", "replica-b"}
    assert len(harness.of(commands[0].step_run_id, StepStarted)) == 1
    assert len(harness.of(commands[0].step_run_id, StepFinished)) == 1
