"""Step commands taken in batches: each attempt once, a repeat skipped, a poison one refused.

Every record goes to partition 0 before the executor starts, so they come as batches; a good
step queued last is the barrier: once it finished, every record before it was taken or
dead-lettered (the takes of a batch commit before its offsets, in order).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from sous_contracts.common import StepStatus
from sous_contracts.steps import CancelStep, ExecuteStep, StepFinished, StepStarted
from sous_contracts.topics import STEP_COMMANDS
from sous_executor.adapters import store
from sous_executor.app import build
from sous_executor.service import Executor
from tests.executor.conftest import execute
from tests.records import dead_letters, produce

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
def queued(kafka_settings, db_settings, executor_settings):
    """Start an executor once the given records wait on partition 0 of the step commands."""

    @contextlib.asynccontextmanager
    async def start(records: list[bytes]) -> AsyncIterator[tuple[Executor, list[int]]]:
        await produce(
            kafka_settings,
            STEP_COMMANDS.full_name(kafka_settings.topic_prefix),
            [(r, []) for r in records],
        )
        runtime, executor = build(executor_settings, kafka_settings, db_settings)
        runtime.guard.max_attempts = 2
        sizes: list[int] = []
        handle = executor.handle

        async def counted(commands: Sequence[ExecuteStep | CancelStep]) -> None:
            sizes.append(len(commands))
            await handle(commands)

        executor.handle = counted  # type: ignore[method-assign]
        async with runtime.running():
            yield executor, sizes

    return start


async def _attempts(executor: Executor) -> int:
    async with executor.runtime.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM attempts"))


async def _statuses(executor: Executor) -> dict[str, int]:
    """How many attempts ended each way (their finishes are recorded together)."""
    async with executor.runtime.pool.acquire() as conn:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM attempts GROUP BY status")
        return {r["status"]: r["n"] for r in rows}


async def test_a_batch_takes_each_attempt_once_and_a_repeat_in_it_not_again(
    harness, queued
) -> None:
    good = [execute("noop") for _ in range(12)]
    records = [c.to_json() for c in [*good[:6], good[3], *good[6:]]]
    async with queued(records) as (executor, batches):
        finished = [await harness.finished(c) for c in good]
        taken = await _attempts(executor)
        statuses = await _statuses(executor)

    assert max(batches) > 1  # they came as batches
    assert statuses == {"succeeded": len(good)}  # every finish recorded, not just one
    assert all(f.status is StepStatus.SUCCEEDED for f in finished)
    for c in good:  # each attempt once, the one sent twice too
        assert len(harness.of(c.step_run_id, StepStarted)) == 1
        assert len(harness.of(c.step_run_id, StepFinished)) == 1
    assert taken == len(good)


async def test_a_poison_command_in_a_batch_is_dead_lettered_and_the_rest_run(
    harness, queued, monkeypatch
) -> None:
    good = [execute("noop") for _ in range(8)]
    failing = execute("noop")
    barrier = execute("noop")
    invalid = json.loads(execute("noop").to_json())
    del invalid["step_run_id"]
    take = store.take

    async def poisoned(conn: Any, commands: list[ExecuteStep], worker_id: str) -> set[Any]:
        if any(c.step_run_id == failing.step_run_id for c in commands):
            raise ValueError("this attempt cannot be taken")
        return await take(conn, commands, worker_id)

    monkeypatch.setattr(store, "take", poisoned)
    records = [
        *(c.to_json() for c in good[:4]),
        json.dumps(invalid).encode(),
        failing.to_json(),
        *(c.to_json() for c in [*good[4:], barrier]),
    ]
    async with queued(records) as (executor, batches):
        await harness.finished(barrier)
        letters = await dead_letters(harness.settings, 2)
        finished = [await harness.finished(c) for c in good]
        taken = await _attempts(executor)

    assert batches[0] > 2  # the poison came in a batch with others
    assert all(f.status is StepStatus.SUCCEEDED for f in finished)
    for c in [*good, barrier]:
        assert len(harness.of(c.step_run_id, StepStarted)) == 1
    assert not harness.of(failing.step_run_id)
    assert taken == len(good) + 1
    by_offset = {x.source_offset: x for x in letters}
    assert sorted(by_offset) == [4, 5]
    assert by_offset[4].error_kind == "invalid"
    assert "step_run_id" in by_offset[4].reason
    assert by_offset[5].error_kind == "handler_error"
    assert "this attempt cannot be taken" in by_offset[5].reason
