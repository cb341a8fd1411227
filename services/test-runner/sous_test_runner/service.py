"""Use cases: run a suite of RunTests, then record and publish the results in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from sous_common import inbox
from sous_common.db import AnyConnection
from sous_common.logs import bind, get_logger
from sous_common.runtime import Runtime
from sous_contracts.envelope import Envelope, utc_now
from sous_contracts.tests import RunTests, TestResult, TestSuiteFinished
from sous_test_runner import metrics
from sous_test_runner.adapters import history
from sous_test_runner.adapters.history import HistoryRow, Measurement, SeriesKey
from sous_test_runner.domain.outcome import summarize
from sous_test_runner.suite import SuiteRunner, TestRun

log = get_logger(__name__)

PRODUCER = "sous-test-runner"


@dataclass
class Deps:
    """What the use cases need."""

    runtime: Runtime
    runner: SuiteRunner


def messages(command: RunTests, runs: Sequence[TestRun]) -> list[Envelope]:
    """Return one TestResult per test and the TestSuiteFinished summary."""
    envelope = command.caused(producer=PRODUCER)
    ids = {
        "order_run_id": command.order_run_id,
        "step_run_id": command.step_run_id,
        "suite_id": command.suite_id,
        "step": command.step,
    }
    out: list[Envelope] = [
        TestResult(
            **envelope,
            **ids,
            test=r.definition.name,
            kind=r.definition.kind,
            severity=r.definition.severity,
            status=r.status,
            domain=command.domain,
            recipe=command.recipe,
            kitchen=command.kitchen,
            variation=command.variation,
            value=r.outcome.value,
            threshold=r.outcome.threshold,
            message=r.outcome.message,
            duration_s=r.duration_s,
        )
        for r in runs
    ]
    summary, blocking = summarize(
        (r.definition.name, r.definition.severity, r.status) for r in runs
    )
    out.append(
        TestSuiteFinished(
            **envelope,
            **ids,
            summary=summary,
            blocking=bool(blocking),
            failed_tests=blocking,
            results={r.definition.name: r.status for r in runs},
        )
    )
    return out


def measurements(runs: Sequence[TestRun]) -> list[Measurement]:
    """Return the history rows of a suite's results."""
    return [
        Measurement(
            key=r.series,
            kind=r.definition.kind,
            severity=r.definition.severity.value,
            status=r.status.value,
            value=r.outcome.value,
            threshold=r.outcome.threshold,
            message=r.outcome.message,
            duration_s=r.duration_s,
        )
        for r in runs
    ]


async def run_tests(command: RunTests, deps: Deps, *, now: datetime | None = None) -> bool:
    """Run a suite once; return False when the command was handled before (a duplicate).

    Tests only read, so they run outside the transaction; the inbox claim, the history rows
    and the outgoing messages then commit together. A delivery whose first try never
    committed simply runs again.
    """
    runtime = deps.runtime
    bind(order_run_id=str(command.order_run_id), step=command.step, domain=command.domain)
    async with runtime.pool.acquire() as conn:
        if await inbox.seen(conn, runtime.group_id, command.message_id):
            log.info("duplicate RunTests ignored", message_id=str(command.message_id))
            return False
    runs = await deps.runner.run(command)
    outgoing = messages(command, runs)

    async def record(conn: AnyConnection) -> bool:
        if not await inbox.claim(conn, runtime.group_id, command.message_id):
            return False
        await history.record(
            conn,
            measurements(runs),
            order_run_id=command.order_run_id,
            suite_id=command.suite_id,
            measured_at=now or utc_now(),
        )
        await runtime.emit(conn, outgoing)
        return True

    # Committed with the results of other suites (sous_common.commits).
    if not await runtime.commits.run(record):
        return False
    metrics.committed(outgoing)
    finished = outgoing[-1]
    assert isinstance(finished, TestSuiteFinished)
    log.info(
        "test suite finished",
        suite_id=str(command.suite_id),
        tests=len(runs),
        blocking=finished.blocking,
        **finished.summary.model_dump(),
    )
    return True


async def history_of_test(
    pool: asyncpg.Pool,
    *,
    domain: str,
    recipe: str,
    step: str,
    test: str,
    kitchen: str,
    variation: str | None = None,
    limit: int = 100,
) -> list[HistoryRow]:
    """Return a test's recorded results for one variation, oldest first (API and console)."""
    key = SeriesKey(domain, recipe, step, test, kitchen, variation)
    return await history.read_history(pool, key, limit=limit)
