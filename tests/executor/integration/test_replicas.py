"""Several replicas in one group and one schema; stopping a replica."""

from __future__ import annotations

import asyncio

import pytest

from sous_contracts.common import StepStatus
from sous_contracts.steps import StepFinished, StepStarted
from tests.executor.conftest import execute
from tests.executor.integration.test_kinds_noop_shell import _alive

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


async def test_stopping_a_replica_kills_its_steps_and_reports_nothing(
    harness, start_executor, tmp_path
) -> None:
    pidfile = tmp_path / "child.pid"
    command = execute(
        "shell",
        {"argv": ["sh", "-c", 'echo $$ > "$SOUS_PARAM_P"; exec sleep 300']},
        params={"p": str(pidfile)},
    )
    async with start_executor():
        await harness.send(command)
        await harness.started(command)
        await harness.wait_for(lambda: pidfile.exists() and pidfile.read_text().strip())
        child = int(pidfile.read_text())
    await harness.wait_for(lambda: not _alive(child), timeout=5)
    probe = execute("noop", order_run_id=command.order_run_id)
    async with start_executor():  # the next replica runs later work; the attempt stays open
        await harness.run(probe)
    assert harness.of(command.step_run_id, StepFinished) == []
