"""The service as a real process: killed with -9 in the middle of a suite, nothing is lost
and nothing is published twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import asyncpg
import pytest

from sous_contracts.common import TestStatus
from tests.test_runner.integration.harness import WAREHOUSE_ENV, check_def, run_tests

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e, pytest.mark.slow]


async def start(env: dict[str, str], log) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "faststream",
        "run",
        "--factory",
        "sous_test_runner.app:create_app",
        env=env,
        stdout=log,
        stderr=log,
    )


async def wait_for_query(url: str, text: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        async with asyncio.timeout(30):
            while not await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                " AND application_name = 'sous-test-runner' AND query LIKE $1",
                f"%{text}%",
            ):
                await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def test_a_killed_runner_loses_nothing_and_duplicates_nothing(
    kafka_settings, db_settings, schema, warehouse, console, tmp_path
) -> None:
    env = {
        **os.environ,
        "SOUS_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "SOUS_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "SOUS_DATABASE_URL": db_settings.url,
        "SOUS_TEST_RUNNER_DB_SCHEMA": schema,
        "SOUS_TEST_RUNNER_CONSUMERS": "1",
        WAREHOUSE_ENV: db_settings.url,
    }
    sleepy = "SELECT 1 + 0 * count(*) FROM pg_sleep(2.5)"
    tests = [
        check_def("rows", {"kind": "metric", "output": "rows", "op": ">", "value": 0}),
        check_def("slow", {"kind": "sql", "query": sleepy, "value": 1}, timeout_s=20),
    ]
    command = run_tests(*tests)
    processes: list[asyncio.subprocess.Process] = []
    with (tmp_path / "runner.log").open("wb") as log:
        try:
            processes.append(await start(env, log))
            await console.send(command)
            await wait_for_query(db_settings.url, "pg_sleep(2.5)")
            processes[0].kill()  # mid-suite: tests ran halfway, nothing committed
            await processes[0].wait()

            processes.append(await start(env, log))
            finished = await console.suite(command.suite_id, timeout=60)
            marker = run_tests(tests[0], order_run_id=command.order_run_id)
            await console.run(marker)  # same partition, after the command: all is in
        finally:
            for p in processes:
                if p.returncode is None:
                    p.terminate()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(15):
                            await p.wait()
                if p.returncode is None:
                    p.kill()
                    await p.wait()

    assert finished.summary.passed == 2
    assert len(console.finished[command.suite_id]) == 1
    results = console.results[command.suite_id]
    assert sorted(r.test for r in results) == ["rows", "slow"]
    assert all(r.status is TestStatus.PASSED for r in results)
    conn = await asyncpg.connect(db_settings.url)
    try:
        recorded = await conn.fetchval(
            f'SELECT count(*) FROM "{schema}".test_history WHERE suite_id = $1', command.suite_id
        )
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()
    assert recorded == 2
