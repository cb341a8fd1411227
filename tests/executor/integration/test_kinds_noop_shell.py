"""noop and shell steps on the real broker and database."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sous_contracts.common import StepStatus
from sous_contracts.steps import CancelStep, StepFinished, StepStarted
from tests.executor.conftest import execute

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_noop_starts_and_finishes_with_its_outputs(harness, executor) -> None:
    command = execute("noop", {"outputs": {"rows": 3}})
    finished = await harness.run(command)
    started = await harness.started(command)
    assert started.worker_id == "executor-test"
    assert started.attempt == 1
    assert started.causation_id == command.message_id
    assert finished.status == StepStatus.SUCCEEDED
    assert finished.outputs.values == {"rows": 3}
    assert harness.events.index(started) < harness.events.index(finished)


async def test_shell_gets_params_and_connections_as_environment_and_publishes_outputs(
    harness, executor, monkeypatch
) -> None:
    monkeypatch.setenv("SOUS_SECRET_SALES__WAREHOUSE", "postgresql://wh")
    script = (
        'echo "day=$SOUS_PARAM_DAY n=$SOUS_PARAM_N step=$SOUS_STEP attempt=$SOUS_ATTEMPT";'
        'echo "conn=$SOUS_CONN_WAREHOUSE" | wc -c;'
        'echo "rows=42" >> "$SOUS_OUTPUTS";'
        'echo "name=\\"$SOUS_KITCHEN\\"" >> "$SOUS_OUTPUTS";'
        "pwd"
    )
    command = execute(
        "shell",
        {"argv": ["sh", "-c", script]},
        params={"day": "2026-01-01; rm -rf /", "n": 5},
        connections={"warehouse": "secret:warehouse"},
        attempt=2,
    )
    finished = await harness.run(command)
    assert finished.status == StepStatus.SUCCEEDED, finished.error
    assert "day=2026-01-01; rm -rf / n=5 step=load attempt=2" in finished.log_tail
    assert finished.outputs.values == {"rows": 42, "name": "dev"}
    assert "sous-load-2-" in finished.log_tail  # a fresh working folder per attempt


async def test_shell_json_outputs_file_with_datasets(harness, executor) -> None:
    payload = '{"values": {"ok": true}, "datasets": [{"uri": "pg://wh/a.b", "rows": 7}]}'
    command = execute("shell", {"argv": ["sh", "-c", f"echo '{payload}' > \"$SOUS_OUTPUTS\""]})
    finished = await harness.run(command)
    assert finished.outputs.values == {"ok": True}
    assert finished.outputs.datasets[0].uri == "pg://wh/a.b"
    assert finished.outputs.datasets[0].rows == 7


async def test_shell_exit_code_and_signal_are_reported(harness, executor) -> None:
    failing = execute("shell", {"argv": ["sh", "-c", "echo boom >&2; exit 3"]})
    killed = execute("shell", {"argv": ["sh", "-c", "kill -9 $$"]})
    missing = execute("shell", {"argv": ["/nonexistent/program"]})
    await asyncio.gather(*(harness.send(c) for c in (failing, killed, missing)))
    failed = await harness.finished(failing)
    assert failed.status == StepStatus.FAILED
    assert failed.error.kind == "exit_code"
    assert failed.error.exit_code == 3
    assert "boom" in failed.log_tail
    signalled = await harness.finished(killed)
    assert signalled.error.kind == "signal"
    assert signalled.error.signal == 9
    not_started = await harness.finished(missing)
    assert not_started.error.kind == "spec"
    assert "/nonexistent/program" in not_started.error.message


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child of an exited parent may linger as a zombie until reaped by init.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"


async def test_timeout_kills_the_whole_process_group(harness, executor, tmp_path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    command = execute(
        "shell",
        {"argv": ["sh", "-c", 'sleep 300 & echo $! > "$SOUS_PARAM_PIDFILE"; wait']},
        params={"pidfile": str(pidfile)},
        timeout_s=1,
    )
    finished = await harness.run(command)
    assert finished.status == StepStatus.TIMED_OUT
    assert finished.error.kind == "timeout"
    assert 1 <= finished.duration_s < 3
    grandchild = int(pidfile.read_text())
    await harness.wait_for(lambda: not _alive(grandchild), timeout=5)


async def test_cancel_stops_a_running_step_within_a_second(harness, executor) -> None:
    command = execute("shell", {"argv": ["sh", "-c", "trap '' TERM; sleep 300 & wait"]})
    await harness.send(command)
    await harness.started(command)
    cancel = CancelStep(
        order_run_id=command.order_run_id, step_run_id=command.step_run_id, reason="run cancelled"
    )
    loop = asyncio.get_running_loop()
    sent = loop.time()
    await harness.send(cancel)
    finished = await harness.finished(command)
    assert finished.status == StepStatus.CANCELLED
    assert finished.error.kind == "cancelled"
    assert finished.error.message == "run cancelled"
    assert harness.arrived[finished.message_id] - sent < 1.5  # kill grace is 0.3 s here


async def test_cancel_for_an_attempt_not_running_here_is_ignored(harness, executor) -> None:
    await harness.send(CancelStep(order_run_id=uuid.uuid4(), step_run_id=uuid.uuid4()))
    probe = execute("noop")
    assert (await harness.run(probe)).status == StepStatus.SUCCEEDED
    assert executor.running == []


async def test_a_duplicate_execute_step_never_runs_twice(harness, executor, tmp_path) -> None:
    ran = tmp_path / "ran.log"
    command = execute(
        "shell",
        {"argv": ["sh", "-c", 'echo ran >> "$SOUS_PARAM_LOG"; sleep 0.3']},
        params={"log": str(ran)},
    )
    again = command.model_copy(update={"message_id": uuid.uuid4()})
    await harness.send(command)
    await harness.send(again)
    await harness.send(command)  # the same message redelivered
    await harness.finished(command)
    later = command.model_copy(update={"message_id": uuid.uuid4()})
    await harness.send(later)  # after it finished, too
    probe = execute("noop", order_run_id=command.order_run_id)  # same partition, sent after
    await harness.run(probe)
    assert len(harness.of(command.step_run_id, StepStarted)) == 1
    assert len(harness.of(command.step_run_id, StepFinished)) == 1
    assert ran.read_text() == "ran\n"


async def test_an_execute_step_past_its_deadline_is_ignored(harness, executor) -> None:
    late = execute("noop", deadline=datetime.now(UTC) - timedelta(seconds=1))
    await harness.send(late)
    probe = execute("noop", order_run_id=late.order_run_id)
    await harness.run(probe)
    assert harness.of(late.step_run_id) == []


async def test_steps_run_concurrently_up_to_the_limit(harness, start_executor) -> None:
    async with start_executor(concurrency=2):
        commands = [execute("shell", {"argv": ["sleep", "1"]}) for _ in range(3)]
        for c in commands:
            await harness.send(c)
        finished = [await harness.finished(c) for c in commands]
    started = [await harness.started(c) for c in commands]
    starts = sorted(harness.arrived[s.message_id] for s in started)
    ends = sorted(harness.arrived[f.message_id] for f in finished)
    assert starts[1] < ends[0]  # two ran at once
    assert starts[2] > ends[0]  # the third waited for a free slot


async def test_cancel_is_heard_while_the_pool_is_full(harness, start_executor) -> None:
    async with start_executor(concurrency=1):
        long = execute("shell", {"argv": ["sleep", "300"]})
        waiting = execute("shell", {"argv": ["sh", "-c", "echo should not run"]})
        await harness.send(long)
        await harness.started(long)
        await harness.send(waiting)  # the handler now waits for the only slot
        await harness.send(
            CancelStep(order_run_id=waiting.order_run_id, step_run_id=waiting.step_run_id)
        )
        loop = asyncio.get_running_loop()
        sent = loop.time()
        await harness.send(CancelStep(order_run_id=long.order_run_id, step_run_id=long.step_run_id))
        stopped = await harness.finished(long)
        assert stopped.status == StepStatus.CANCELLED
        assert harness.arrived[stopped.message_id] - sent < 1.5
        never_ran = await harness.finished(waiting)
    assert never_ran.status == StepStatus.CANCELLED
    assert "before it started" in never_ran.error.message
    assert "should not run" not in never_ran.log_tail


async def test_a_cancel_heard_before_its_attempt_arrives_still_stops_it(
    harness, start_executor
) -> None:
    """The cancel listener reads on while the attempt's partition waits behind a full pool."""
    async with start_executor(concurrency=1) as executor:
        long = execute("shell", {"argv": ["sleep", "300"]})
        late = execute("shell", {"argv": ["sh", "-c", "echo should not run"]})
        await harness.send(long)
        await harness.started(long)
        await harness.send(CancelStep(order_run_id=late.order_run_id, step_run_id=late.step_run_id))
        async with asyncio.timeout(10):  # barrier: the replica heard it, for nothing here
            while (late.step_run_id, None) not in executor._early:
                await asyncio.sleep(0.01)
        await harness.send(late)
        await harness.send(CancelStep(order_run_id=long.order_run_id, step_run_id=long.step_run_id))
        assert (await harness.finished(long)).status == StepStatus.CANCELLED
        never_ran = await harness.finished(late)
    assert never_ran.status == StepStatus.CANCELLED
    assert "before it started" in never_ran.error.message
    assert "should not run" not in never_ran.log_tail


async def test_outputs_too_large_for_one_message_fail_the_step(harness, start_executor) -> None:
    async with start_executor(max_event_bytes=4000):
        big = await harness.run(execute("noop", {"outputs": {"blob": "x" * 5000}}))
        small = await harness.run(execute("noop", {"outputs": {"n": 1}}))
    assert big.status == StepStatus.FAILED
    assert big.outputs.values == {}
    assert "outputs too large" in big.error.message
    assert small.status == StepStatus.SUCCEEDED  # the outbox was not stalled
