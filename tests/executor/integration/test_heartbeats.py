"""A running step heartbeats at the interval its command asks for; a SIGKILLed executor
sends no StepFinished and takes the step's processes with it.

What the scheduler makes of heartbeats that stop (the lease) is tested with the scheduler:
tests/scheduler/integration/test_lease.py."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import statistics
import uuid

import pytest

from sous_contracts.steps import StepFinished, StepHeartbeat
from sous_contracts.topics import STEP_EVENTS
from tests.executor.conftest import execute
from tests.executor.integration import executor_process
from tests.executor.integration.test_kinds_noop_shell import _alive

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]

INTERVAL = 0.5
"""Asked of the executor; ten times shorter than the scheduler's default."""


async def test_heartbeats_at_the_asked_interval_until_the_executor_is_killed(
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
        await harness.wait_for(lambda: len(harness.of(command.step_run_id, StepHeartbeat)) >= 6)
        child = int(pidfile.read_text())
        grandchild = int(grandchild_file.read_text())
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    beats = [b.occurred_at for b in harness.of(command.step_run_id, StepHeartbeat)]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(beats)]
    assert min(gaps) >= 0.9 * INTERVAL, gaps
    assert statistics.median(gaps) <= 1.5 * INTERVAL, gaps
    assert all(b.worker_id == started.worker_id for b in harness.of(command.step_run_id))

    # A sentinel behind the step's events on their partition: once it is read, everything
    # the killed executor had sent has been read too.
    sentinel = StepHeartbeat(
        order_run_id=command.order_run_id, step_run_id=uuid.uuid4(), attempt=1, worker_id="test"
    )
    await harness.producer.send_and_wait(
        STEP_EVENTS.full_name(kafka_settings.topic_prefix),
        sentinel.to_json(),
        key=sentinel.kafka_key(),
    )
    await harness.wait_for(lambda: harness.of(sentinel.step_run_id))
    assert harness.of(command.step_run_id, StepFinished) == []

    # The direct child dies with the executor (PR_SET_PDEATHSIG), and the reaper helper
    # kills the rest of the step's process group (the grandchild).
    try:
        await harness.wait_for(lambda: not _alive(child), timeout=5)
        await harness.wait_for(lambda: not _alive(grandchild), timeout=5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child, signal.SIGKILL)
