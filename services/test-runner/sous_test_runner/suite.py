"""Running a suite: validate each check, run the tests concurrently, each within its timeout.

Nothing a test does can crash the suite: an invalid check, an unknown kind, an exception or
a timeout becomes that test's `error` outcome, with the reason and no secret in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg
from pydantic import ValidationError

from sous_common.decoding import explain
from sous_common.references import Scope
from sous_contracts.common import TestStatus
from sous_contracts.tests import RunTests, TestDefinition
from sous_test_runner.adapters.connections import ConnectionProblem, PoolCache, redact, resolve
from sous_test_runner.adapters.history import SeriesKey
from sous_test_runner.domain.compare import NotComparable
from sous_test_runner.domain.outcome import Outcome, status_of
from sous_test_runner.kinds import KINDS, TestContext, load_all
from sous_test_runner.kinds.base import HistoryReader
from sous_test_runner.kinds.metric import MissingOutput


@dataclass(frozen=True)
class TestRun:
    """One test of a suite, run."""

    __test__ = False

    definition: TestDefinition
    outcome: Outcome
    status: TestStatus
    duration_s: float
    series: SeriesKey


@dataclass
class SuiteRunner:
    """Runs the tests of RunTests commands; shared by every suite of the process."""

    pools: PoolCache
    history: HistoryReader
    concurrency: int = 8
    secrets_dir: Path | None = None
    env: Mapping[str, str] | None = None
    suites: int = 4
    """Suites run at once in the process; a batch's others wait, so that tests waiting for
    a tested database's few connections do not run out their timeouts meanwhile."""

    def __post_init__(self) -> None:
        load_all()
        self._suites = asyncio.Semaphore(self.suites)

    async def run(self, command: RunTests) -> list[TestRun]:
        """Run every test of the command; results come back in the command's order."""
        gate = asyncio.Semaphore(self.concurrency)
        secrets = self._resolved(command)

        async def one(definition: TestDefinition) -> TestRun:
            async with gate:
                return await self._run_one(command, definition, secrets)

        async with self._suites:
            return list(await asyncio.gather(*(one(d) for d in command.tests)))

    async def _run_one(
        self, command: RunTests, definition: TestDefinition, secrets: list[str]
    ) -> TestRun:
        series = SeriesKey(
            command.domain,
            command.recipe,
            command.step,
            definition.name,
            command.kitchen,
            command.variation,
        )
        started = time.perf_counter()
        outcome = await self._outcome(command, definition, series)
        if secrets:
            outcome = _scrubbed(outcome, secrets)
        return TestRun(
            definition,
            outcome,
            status_of(outcome, definition.severity),
            round(time.perf_counter() - started, 6),
            series,
        )

    async def _outcome(
        self, command: RunTests, definition: TestDefinition, series: SeriesKey
    ) -> Outcome:
        kind = KINDS.get(definition.kind)
        if kind is None:
            known = ", ".join(sorted(KINDS))
            return Outcome.error(f"unknown test kind {definition.kind!r} (known: {known})")
        check = {"kind": definition.kind, **definition.check}
        if check["kind"] != definition.kind:
            return Outcome.error(
                f"check kind {check['kind']!r} does not match test kind {definition.kind!r}"
            )
        try:
            spec = kind.model.model_validate(check)
        except ValidationError as exc:
            return Outcome.error(explain(exc))
        context = TestContext(
            outputs=command.outputs,
            params=command.params,
            connections=command.connections,
            scope=Scope(command.domain, command.kitchen),
            pools=self.pools,
            history=self.history,
            series=series,
            timeout_s=definition.timeout_s,
            secrets_dir=self.secrets_dir,
            env=self.env,
        )
        try:
            async with asyncio.timeout(definition.timeout_s):
                return await kind.run(spec, context)
        except (TimeoutError, asyncpg.QueryCanceledError):
            return Outcome.error(f"timed out after {definition.timeout_s:g}s")
        except (ConnectionProblem, MissingOutput, NotComparable) as exc:
            return Outcome.error(str(exc))
        except Exception as exc:
            return Outcome.error(f"{type(exc).__name__}: {exc}")

    def _resolved(self, command: RunTests) -> list[str]:
        scope = Scope(command.domain, command.kitchen)
        found = []
        for ref in command.connections.values():
            with contextlib.suppress(ConnectionProblem):
                found.append(resolve(ref, scope, secrets_dir=self.secrets_dir, env=self.env))
        return found


def _scrubbed(outcome: Outcome, secrets: list[str]) -> Outcome:
    """Remove resolved DSNs (and their passwords) from what a result publishes."""
    message, value = outcome.message, outcome.value
    for dsn in secrets:
        message = redact(message, dsn)
        if isinstance(value, str):
            value = redact(value, dsn)
    return replace(outcome, message=message, value=value)
