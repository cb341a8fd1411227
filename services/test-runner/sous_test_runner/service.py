"""Use cases: run a suite of RunTests, then record and publish the results in one transaction."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from sous_common import inbox
from sous_common import metrics as shared_metrics
from sous_common.db import AnyConnection
from sous_common.logs import get_logger
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
        "monitor": command.monitor,
        "dataset": command.dataset,
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
            domain=command.domain,
            kitchen=command.kitchen,
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
    """Run a suite once; return False when the command was handled before (a duplicate)."""
    return bool(await run_batch([command], deps, now=now))


async def run_batch(
    commands: Sequence[RunTests], deps: Deps, *, now: datetime | None = None
) -> list[RunTests]:
    """Run a batch of suites side by side; return the commands not handled before.

    Tests only read, so they run outside the transaction; one inbox claim for the batch, the
    history rows and the outgoing messages (a statement each) then commit together. A
    command twice in one batch runs once. A delivery whose first try never committed simply
    runs again.
    """
    runtime = deps.runtime
    unique = list({c.message_id: c for c in commands}.values())
    shared_metrics.duplicates(runtime.group_id, len(commands) - len(unique))
    async with runtime.pool.acquire() as conn:
        before = await inbox.seen_many(conn, runtime.group_id, [c.message_id for c in unique])
    todo = [c for c in unique if c.message_id not in before]
    for c in unique:
        if c.message_id in before:
            log.info("duplicate RunTests ignored", message_id=str(c.message_id))
    if not todo:
        return []
    suites = await asyncio.gather(*(deps.runner.run(c) for c in todo))
    outgoing = [messages(c, runs) for c, runs in zip(todo, suites, strict=True)]

    async def record(conn: AnyConnection) -> set[uuid.UUID]:
        fresh = await inbox.claim_many(conn, runtime.group_id, [c.message_id for c in todo])
        results = [
            history.SuiteResults(command.order_run_id, command.suite_id, measurements(runs))
            for command, runs in zip(todo, suites, strict=True)
            if command.message_id in fresh
        ]
        await history.record(conn, results, measured_at=now or utc_now())
        await runtime.emit(
            conn,
            [
                m
                for c, out in zip(todo, outgoing, strict=True)
                if c.message_id in fresh
                for m in out
            ],
        )
        return fresh

    # Committed with the results of other batches (sous_common.commits).
    fresh = await runtime.commits.run(record)
    done = []
    for command, runs, out in zip(todo, suites, outgoing, strict=True):
        if command.message_id not in fresh:
            continue
        done.append(command)
        metrics.committed(out)
        finished = out[-1]
        assert isinstance(finished, TestSuiteFinished)
        log.info(
            "test suite finished",
            order_run_id=str(command.order_run_id),
            step=command.step,
            domain=command.domain,
            suite_id=str(command.suite_id),
            tests=len(runs),
            blocking=finished.blocking,
            **finished.summary.model_dump(),
        )
    return done


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
