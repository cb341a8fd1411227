"""RunTests taken in batches: each suite once, a repeat skipped, a poison message alone refused.

Every record goes to partition 0 before the test-runner starts, so they come as batches. The
summaries go out keyed by run, over every partition of the results, so the test waits for the
summary of each good suite, then reads the database: a suite run twice shows in its history.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest

from sous_contracts.tests import RunTests
from sous_contracts.topics import TEST_COMMANDS
from sous_test_runner import service
from sous_test_runner.app import build
from sous_test_runner.service import Deps
from sous_test_runner.settings import TestRunnerSettings
from tests.records import dead_letters, produce
from tests.test_runner.integration.harness import check_def, run_tests

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ROWS = check_def("rows", {"kind": "metric", "output": "rows", "op": ">", "value": 0})


@pytest.fixture
def batches(monkeypatch) -> list[int]:
    """The size of every batch the test-runner handles."""
    sizes: list[int] = []
    run_batch = service.run_batch

    async def counted(commands: Sequence[RunTests], deps: Deps, **kw: Any) -> list[RunTests]:
        sizes.append(len(commands))
        return await run_batch(commands, deps, **kw)

    monkeypatch.setattr(service, "run_batch", counted)
    return sizes


@pytest.fixture
def queued(kafka_settings, db_settings, schema, tmp_path):
    """Start a test-runner once the given records wait on partition 0 of the test commands."""

    @contextlib.asynccontextmanager
    async def start(records: list[bytes], deps_hook: Any = None) -> AsyncIterator[Deps]:
        topic = TEST_COMMANDS.full_name(kafka_settings.topic_prefix)
        await produce(kafka_settings, topic, [(r, []) for r in records])
        settings = TestRunnerSettings(
            kafka=kafka_settings, database=db_settings, db_schema=schema, secrets_dir=tmp_path
        )
        deps = build(settings)
        if deps_hook is not None:
            deps_hook(deps)
        try:
            async with deps.runtime.running():
                yield deps
        finally:
            conn = await asyncpg.connect(db_settings.url)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()

    return start


async def _claims_and_history(deps: Deps, commands: list[RunTests]) -> tuple[int, dict[Any, int]]:
    async with deps.runtime.pool.acquire() as conn:
        claims = await conn.fetchval(
            "SELECT count(*) FROM inbox WHERE message_id = ANY($1::uuid[])",
            [c.message_id for c in commands],
        )
        rows = await conn.fetch("SELECT suite_id, count(*) AS n FROM test_history GROUP BY 1")
    return claims, {r["suite_id"]: r["n"] for r in rows}


async def test_a_batch_runs_each_suite_once_and_a_repeat_in_it_not_again(
    queued, console, batches
) -> None:
    good = [run_tests(ROWS) for _ in range(10)]
    records = [c.to_json() for c in [*good[:5], good[2], *good[5:]]]
    async with queued(records) as deps:
        for c in good:
            await console.suite(c.suite_id)
        claims, history = await _claims_and_history(deps, good)

    assert max(batches) > 1  # they came as batches
    for c in good:  # each suite once, the one sent twice too
        assert len(console.finished[c.suite_id]) == 1
        assert len(console.results[c.suite_id]) == 1
    assert history == {c.suite_id: 1 for c in good}
    assert claims == len(good)


async def test_a_poison_message_in_a_batch_is_dead_lettered_and_the_rest_succeed(
    queued, console, batches
) -> None:
    good = [run_tests(ROWS) for _ in range(8)]
    failing = run_tests(ROWS)
    barrier = run_tests(ROWS)
    invalid = json.loads(run_tests(ROWS).to_json())
    del invalid["suite_id"]
    records = [
        *(c.to_json() for c in good[:4]),
        json.dumps(invalid).encode(),
        failing.to_json(),
        *(c.to_json() for c in [*good[4:], barrier]),
    ]

    def poison(deps: Deps) -> None:
        deps.runtime.guard.max_attempts = 2
        run_suite = deps.runner.run

        async def run(command: RunTests) -> Any:
            if command.suite_id == failing.suite_id:
                raise ValueError("this suite cannot be run")
            return await run_suite(command)

        deps.runner.run = run  # type: ignore[method-assign]

    async with queued(records, poison) as deps:
        for c in [*good, barrier]:
            await console.suite(c.suite_id)
        letters = await dead_letters(console.settings, 2)
        claims, history = await _claims_and_history(deps, [*good, failing, barrier])

    assert batches[0] > 2  # the poison came in a batch with others
    for c in [*good, barrier]:
        assert len(console.finished[c.suite_id]) == 1
    assert history == {c.suite_id: 1 for c in [*good, barrier]}
    assert claims == len(good) + 1  # the failing suite claimed nothing
    assert not console.finished.get(failing.suite_id)
    by_offset = {x.source_offset: x for x in letters}
    assert sorted(by_offset) == [4, 5]
    assert by_offset[4].error_kind == "invalid"
    assert "suite_id" in by_offset[4].reason
    assert by_offset[5].error_kind == "handler_error"
    assert "this suite cannot be run" in by_offset[5].reason
