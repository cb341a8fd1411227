"""A SIGKILLed executor: heartbeats stop, no StepFinished, the lease expires, the child dies."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import pytest

from sous_contracts.steps import StepFinished, StepHeartbeat
from tests.executor.conftest import execute
from tests.executor.integration import executor_process
from tests.executor.integration.test_kinds_noop_shell import _alive

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]

INTERVAL = 0.5


async def test_killed_executor_lets_the_lease_expire(
    harness, kafka_settings, servers, drop_schema, tmp_path
) -> None:
    pidfile, grandchild_file = tmp_path / "child.pid", tmp_path / "grandchild.pid"
    proc = executor_process.start(
        kafka_settings,
        servers.database_url,
        drop_schema,
        tmp_path / "executor.log",
        work_root=str(tmp_path / "work"),
    )
    command = execute(
        "shell",
        {
            "argv": [
                "sh",
                "-c",
                'sleep 300 & echo $! > "$SOUS_PARAM_G"; echo $$ > "$SOUS_PARAM_P"; wait',
            ]
        },
        params={"p": str(pidfile), "g": str(grandchild_file)},
        heartbeat_interval_s=INTERVAL,
        timeout_s=120,
    )
    try:
        await harness.send(command)
        started = await harness.started(command, timeout=40)
        assert started.worker_id.startswith("executor@")
        await harness.wait_for(lambda: len(harness.of(command.step_run_id, StepHeartbeat)) >= 3)
        child = int(pidfile.read_text())
        grandchild = int(grandchild_file.read_text())
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    loop = asyncio.get_running_loop()
    killed_at = loop.time()

    # The scheduler's view: the lease is the last heartbeat plus three intervals.
    await asyncio.sleep(3 * INTERVAL + 1.0)
    beats = harness.of(command.step_run_id, StepHeartbeat)
    last = max(harness.arrived[b.message_id] for b in beats)
    assert last < killed_at + 0.2, "a heartbeat arrived after the executor died"
    assert loop.time() - last > 3 * INTERVAL, "the lease should have expired"
    assert harness.of(command.step_run_id, StepFinished) == []

    # The direct child dies with the executor (PR_SET_PDEATHSIG), and the reaper helper
    # kills the rest of the step's process group (the grandchild).
    try:
        await harness.wait_for(lambda: not _alive(child), timeout=5)
        await harness.wait_for(lambda: not _alive(grandchild), timeout=5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child, signal.SIGKILL)
