"""Stopping a replica: it hands its partitions over first, then finishes or reports its attempts."""

from __future__ import annotations

import asyncio
import signal
import subprocess

import asyncpg
import pytest

from sous_common.runtime import worker_id
from sous_contracts.common import StepStatus
from sous_contracts.steps import ExecuteStep, StepStarted
from tests.executor.conftest import execute
from tests.executor.integration import executor_process
from tests.executor.integration.test_kinds_noop_shell import _alive

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

GRACE = 4.0


def _long() -> ExecuteStep:
    return execute("shell", {"argv": ["sleep", "300"]}, timeout_s=120)


async def _statuses(url: str, schema: str) -> dict[str, str]:
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        rows = await conn.fetch("SELECT step_run_id, status FROM attempts")
    finally:
        await conn.close()
    return {str(r["step_run_id"]): r["status"] for r in rows}


async def test_sigterm_hands_partitions_over_then_reports_running_attempts(
    harness, start_executor, kafka_settings, servers, drop_schema, tmp_path
) -> None:
    loop = asyncio.get_running_loop()
    async with start_executor(worker_id="replica-b", concurrency=32, shutdown_grace_s=0.2):
        proc = executor_process.start(
            kafka_settings,
            servers.database_url,
            drop_schema,
            tmp_path / "executor.log",
            work_root=str(tmp_path / "work"),
            worker_id="replica-a",
            shutdown_grace_s=str(GRACE),
        )
        try:
            # Barrier: replica a has joined the group and owns the partition of a probe.
            async with asyncio.timeout(60):
                while True:
                    probe = execute("noop")
                    if (await harness.run(probe, timeout=40)).worker_id == "replica-a":
                        break
            mine = _long().model_copy(update={"order_run_id": probe.order_run_id})
            await harness.send(mine)
            assert (await harness.started(mine)).worker_id == "replica-a"
            proc.send_signal(signal.SIGTERM)
            signalled = loop.time()
            # New work on the partition replica a owned until now.
            later = [execute("noop", order_run_id=mine.order_run_id) for _ in range(3)]
            for command in later:
                await harness.send(command)
            for command in later:
                await harness.finished(command, timeout=30)
            report = await harness.finished(mine, timeout=GRACE + 10)
            await asyncio.to_thread(proc.wait, 30)
            exited = loop.time()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    assert report.status is StepStatus.CANCELLED
    assert report.error is not None
    assert report.error.kind == "shutdown"
    reported = harness.arrived[report.message_id] - signalled
    assert GRACE - 0.5 < reported < GRACE + 3, f"reported {reported:.1f}s after SIGTERM"
    assert exited - signalled < GRACE + 5
    # The stopping replica took none of the new work, and did not hold it back: the other
    # replica started it while the stopping one was still waiting for its attempt.
    for command in later:
        (started,) = harness.of(command.step_run_id, StepStarted)
        assert started.worker_id == "replica-b"
        assert harness.arrived[started.message_id] < harness.arrived[report.message_id]
    statuses = await _statuses(servers.database_url, drop_schema)
    assert statuses[str(mine.step_run_id)] == "cancelled"
    assert "running" not in statuses.values()


async def test_stop_lets_an_attempt_finish_within_the_grace(
    harness, start_executor, tmp_path
) -> None:
    pidfile = tmp_path / "child.pid"
    command = execute(
        "shell",
        {"argv": ["sh", "-c", 'echo $$ > "$SOUS_PARAM_P"; sleep 1']},
        params={"p": str(pidfile)},
    )
    async with start_executor(shutdown_grace_s=10.0):
        await harness.send(command)
        await harness.wait_for(lambda: pidfile.exists() and pidfile.read_text().strip())
    # Stopped while the step ran: it finished and was reported before the replica was gone.
    assert (await harness.finished(command)).status is StepStatus.SUCCEEDED


async def test_stop_reports_an_attempt_still_running_after_the_grace(
    harness, start_executor, servers, drop_schema, tmp_path
) -> None:
    pidfile = tmp_path / "child.pid"
    command = execute(
        "shell",
        {"argv": ["sh", "-c", 'echo $$ > "$SOUS_PARAM_P"; exec sleep 300']},
        params={"p": str(pidfile)},
    )
    async with start_executor(shutdown_grace_s=0.5):
        await harness.send(command)
        await harness.wait_for(lambda: pidfile.exists() and pidfile.read_text().strip())
        child = int(pidfile.read_text())
    assert not _alive(child)
    finished = await harness.finished(command)
    assert finished.status is StepStatus.CANCELLED
    assert finished.error is not None
    assert finished.error.kind == "shutdown"
    assert await _statuses(servers.database_url, drop_schema) == {
        str(command.step_run_id): "cancelled"
    }


async def test_start_marks_attempts_of_dead_predecessors_lost(
    harness, start_executor, kafka_settings, servers, drop_schema, tmp_path
) -> None:
    proc = executor_process.start(
        kafka_settings,
        servers.database_url,
        drop_schema,
        tmp_path / "executor.log",
        work_root=str(tmp_path / "work"),
    )
    killed = _long()
    try:
        await harness.send(killed)
        started = await harness.started(killed, timeout=40)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert started.worker_id == worker_id("executor").rsplit(":", 1)[0] + f":{proc.pid}"
    assert await _statuses(servers.database_url, drop_schema) == {
        str(killed.step_run_id): "running"
    }
    # A live replica on the same host keeps its attempt running.
    with subprocess.Popen(["sleep", "300"]) as other:  # noqa: ASYNC220
        try:
            conn = await asyncpg.connect(
                servers.database_url, server_settings={"search_path": drop_schema}
            )
            host = started.worker_id.rsplit(":", 1)[0]
            await conn.execute(
                "INSERT INTO attempts (step_run_id, attempt, order_run_id, step, worker_id,"
                " message_id) VALUES (gen_random_uuid(), 1, gen_random_uuid(), 'load', $1,"
                " gen_random_uuid())",
                f"{host}:{other.pid}",
            )
            await conn.close()
            async with start_executor(worker_id=None):  # the default id: this host, this pid
                statuses = await _statuses(servers.database_url, drop_schema)
        finally:
            other.kill()
    assert statuses.pop(str(killed.step_run_id)) == "lost"
    assert list(statuses.values()) == ["running"]
