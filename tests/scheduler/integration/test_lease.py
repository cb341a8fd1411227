"""Executor leases with a real executor process: heartbeats carry a long step through many
leases; once a SIGKILL stops them, the scheduler marks the step lost and fails the run."""

from __future__ import annotations

import json
import signal

import pytest

from sous_contracts.common import RunStatus
from sous_contracts.steps import StepHeartbeat, StepStarted
from tests.executor.integration import executor_process
from tests.scheduler.integration.conftest import (
    drop,
    publish_registry,
    recipe,
    run_scheduler,
    taken_in,
)
from tests.scheduler.integration.test_runs import finished, run_events, start
from tests.scheduler.standins import send

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]

INTERVAL = 0.5
LEASE = 3 * INTERVAL


def carried(events: list) -> bool:
    """True when heartbeats reach two whole leases past the step's start."""
    starts = [e.occurred_at for e in events if isinstance(e, StepStarted)]
    beats = [e.occurred_at for e in events if isinstance(e, StepHeartbeat)]
    return bool(starts and beats) and (max(beats) - starts[0]).total_seconds() > 2 * LEASE


async def test_a_killed_executor_s_step_is_lost_once_its_heartbeats_stop(
    kafka_settings, servers, schema, tmp_path
) -> None:
    long = {"run": {"kind": "shell", "argv": ["sleep", "300"]}, "timeout": "10m"}
    settings = {"heartbeat_interval_s": INTERVAL, "lease_factor": 3}
    async with run_scheduler(kafka_settings, servers, schema, **settings) as service:
        await publish_registry(kafka_settings, service, [recipe("a", "make", {"long": long})])
        executor = executor_process.start(
            kafka_settings,
            servers.database_url,
            f"x{schema}",
            tmp_path / "executor.log",
            work_root=str(tmp_path / "work"),
        )
        command = start("a", "make")
        try:
            await send(kafka_settings, [command])
            steps = await run_events(kafka_settings, carried, 60, topic="step")
            # Once the scheduler took in the last heartbeat, its view covers every lease so far.
            last = [e for e in steps if isinstance(e, StepHeartbeat)][-1]
            await taken_in(service.rt.pool, [last.message_id])
            state = await service.rt.pool.fetchval(
                "SELECT state FROM runs WHERE id = $1", command.order_run_id
            )
            assert json.loads(state)["steps"]["long"]["phase"] == "running"
            executor.send_signal(signal.SIGKILL)
            executor.wait(10)
            events = await run_events(kafka_settings, lambda s: len(finished(s)) >= 1, 30)
        finally:
            if executor.poll() is None:
                executor.kill()
                executor.wait(10)
            await drop(servers, f"x{schema}")
    (end,) = finished(events)
    assert end.status is RunStatus.FAILED
    assert end.reason.startswith("step 'long' lost: executor lost: no heartbeat for attempt 1")
    assert last.worker_id in end.reason
