"""Trend tests against recorded history, and a redelivered RunTests that changes nothing."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from sous_contracts.common import TestStatus
from sous_test_runner.service import history_of_test
from tests.test_runner.integration.harness import check_def, run_tests

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SERIES = {"domain": "sales", "recipe": "daily", "step": "load", "kitchen": "dev"}


async def test_history_catches_a_tenfold_drop_in_volume(runner, console) -> None:
    volume = check_def("volume", {"kind": "history", "output": "rows", "last": 5, "within_pct": 30})
    spread = check_def("spread", {"kind": "history", "output": "rows", "max_z": 4})
    seen = []
    for rows in (1000, 1020, 980, 1010, 990):
        finished, results = await console.run(run_tests(volume, spread, rows=rows))
        seen.append(results["volume"].status)
        assert not finished.blocking
    assert seen == [TestStatus.PASSED] * 5
    assert results["volume"].threshold["runs"] == 4

    finished, results = await console.run(run_tests(volume, spread, rows=100))
    assert results["volume"].status is TestStatus.FAILED
    assert "90.0% from mean 1000" in results["volume"].message
    assert results["volume"].value == 100
    assert results["volume"].threshold["runs"] == 5
    assert results["spread"].status is TestStatus.FAILED
    assert finished.blocking
    assert set(finished.failed_tests) == {"volume", "spread"}

    # Another variation has no history yet: the drop is not judged there.
    _, other = await console.run(run_tests(volume, rows=100, variation="canary"))
    assert other["volume"].status is TestStatus.PASSED
    assert "not judged" in other["volume"].message

    rows = await history_of_test(runner.runtime.pool, **SERIES, test="volume", variation="dev")
    assert [r.value for r in rows] == [1000, 1020, 980, 1010, 990, 100]
    assert [r.status for r in rows][-1] == "failed"
    assert rows == sorted(rows, key=lambda r: r.measured_at)
    newest = await history_of_test(
        runner.runtime.pool, **SERIES, test="volume", variation="dev", limit=2
    )
    assert [r.value for r in newest] == [990, 100]


async def test_a_duplicate_runtests_produces_nothing_new(runner, console) -> None:
    tests = [
        check_def("rows", {"kind": "metric", "output": "rows", "op": ">", "value": 0}),
        check_def("trend", {"kind": "history", "output": "rows", "within_pct": 10}),
    ]
    command = run_tests(*tests)
    await console.run(command)
    await console.send(command)  # redelivered: same message_id
    # Same run id → same partition, so once this later suite is done the duplicate was handled.
    marker = run_tests(*tests, order_run_id=command.order_run_id)
    await console.run(marker)

    assert len(console.finished[command.suite_id]) == 1
    assert len(console.results[command.suite_id]) == 2
    # A new delivery id for the same suite may publish again, but never records twice.
    again = command.model_copy(update={"message_id": uuid.uuid4()})
    await console.send(again)
    async with asyncio.timeout(30):
        while len(console.finished[command.suite_id]) < 2:
            await console.poll()
    async with runner.runtime.pool.acquire() as conn:
        recorded = await conn.fetchval(
            "SELECT count(*) FROM test_history WHERE suite_id = $1", command.suite_id
        )
        claimed = await conn.fetchval(
            "SELECT count(*) FROM inbox WHERE message_id = ANY($1::uuid[])",
            [command.message_id, marker.message_id, again.message_id],
        )
    assert recorded == 2
    assert claimed == 3
