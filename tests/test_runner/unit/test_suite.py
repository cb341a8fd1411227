"""The suite runner without servers: outputs, history, python, and everything that errors."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from sous_contracts.common import Outputs, Severity, TestStatus
from sous_contracts.tests import RunTests, TestDefinition
from sous_test_runner.adapters.connections import PoolCache
from sous_test_runner.kinds import load_all
from sous_test_runner.service import messages
from sous_test_runner.suite import SuiteRunner


def command(*tests: TestDefinition, **extra) -> RunTests:
    fields = {
        "order_run_id": uuid.uuid4(),
        "step_run_id": uuid.uuid4(),
        "step": "load",
        "suite_id": uuid.uuid4(),
        "domain": "sales",
        "recipe": "daily",
        "kitchen": "dev",
        "variation": "dev",
        "outputs": Outputs(values={"rows": 1200, "label": "x"}),
        "params": {"expected": 1000},
        **extra,
    }
    return RunTests(tests=list(tests), **fields)


def t(name: str, check: dict, severity: Severity = Severity.ERROR, timeout_s: float = 5):
    return TestDefinition(
        name=name, kind=check["kind"], check=check, severity=severity, timeout_s=timeout_s
    )


@pytest.fixture
def runner():
    earlier: dict[str, list[float]] = {"volume": [1000, 1010, 990, 1000]}

    async def history(key, last):
        return earlier.get(key.test, [])[:last]

    return SuiteRunner(PoolCache(), history, env={})


def test_every_kind_of_the_issue_is_registered() -> None:
    assert set(load_all()) >= {
        "sql",
        "metric",
        "row_count",
        "not_null",
        "unique",
        "accepted_values",
        "freshness",
        "schema",
        "history",
        "python",
    }


async def test_outputs_history_and_python(runner) -> None:
    cmd = command(
        t("rows", {"kind": "metric", "output": "rows", "op": ">", "value": 0}),
        t("rows-max", {"kind": "metric", "output": "rows", "op": "<", "value": "1000"}),
        t("volume", {"kind": "history", "output": "rows", "within_pct": 50}),
        t("fresh", {"kind": "history", "output": "rows", "within_pct": 50}),
        t("py", {"kind": "python", "function": "tests.test_runner.pychecks:rows_positive"}),
        t(
            "py-ratio",
            {
                "kind": "python",
                "function": "tests.test_runner.pychecks:ratio",
                "op": ">=",
                "value": 1.5,
            },
            Severity.WARNING,
        ),
        t("py-async", {"kind": "python", "function": "tests.test_runner.pychecks:async_true"}),
    )
    runs = {r.definition.name: r for r in await runner.run(cmd)}
    assert runs["rows"].status is TestStatus.PASSED
    assert runs["rows"].outcome.message == "rows 1200 > 0"
    assert runs["rows-max"].status is TestStatus.FAILED
    assert runs["volume"].status is TestStatus.PASSED
    assert "not judged" in runs["fresh"].outcome.message
    assert runs["py"].status is TestStatus.PASSED
    assert runs["py-ratio"].status is TestStatus.WARNING
    assert runs["py-ratio"].outcome.value == 1.2
    assert runs["py-async"].status is TestStatus.PASSED


async def test_what_cannot_run_is_an_error_with_the_reason(runner) -> None:
    py = "tests.test_runner.pychecks"
    cmd = command(
        t("missing", {"kind": "metric", "output": "nope", "op": ">", "value": 0}),
        t("invalid", {"kind": "metric", "output": "rows", "op": "~", "value": 0}),
        TestDefinition(name="unknown", kind="teleport", check={}),
        TestDefinition(name="mismatch", kind="metric", check={"kind": "sql", "query": "x"}),
        t("text", {"kind": "metric", "output": "label", "op": ">", "value": 3}, Severity.LOG),
        t("noconn", {"kind": "sql", "query": "SELECT 1", "value": 1}),
        t("broken", {"kind": "python", "function": f"{py}:broken"}),
        t("slow", {"kind": "python", "function": f"{py}:async_slow"}, timeout_s=0.2),
        t("novalue", {"kind": "python", "function": f"{py}:text"}),
        t("nomodule", {"kind": "python", "function": "no_such_module_xyz:f"}),
    )
    runs = {r.definition.name: r for r in await runner.run(cmd)}
    assert all(r.status is TestStatus.ERROR for r in runs.values()), runs
    said = {name: r.outcome.message for name, r in runs.items()}
    assert "no output 'nope' (outputs: label, rows)" in said["missing"]
    assert said["invalid"].startswith("invalid MetricCheck: op:")
    assert "unknown test kind 'teleport'" in said["unknown"]
    assert "does not match" in said["mismatch"]
    assert "cannot compare 'x' > 3" in said["text"]
    assert "no connection" in said["noconn"] or "unknown connection" in said["noconn"]
    assert "the check itself is broken" in said["broken"]
    assert said["slow"] == "timed out after 0.2s"
    assert "set `op` and `value`" in said["novalue"]
    assert "No module named" in said["nomodule"]
    suite = messages(cmd, list(runs.values()))[-1]
    # The log-severity error counts as an error but does not block.
    assert "text" not in suite.failed_tests
    assert suite.blocking
    assert suite.summary.errors == len(runs)


async def test_a_new_kind_is_one_registration(runner) -> None:
    from typing import Literal

    from pydantic import BaseModel

    from sous_test_runner.domain.outcome import Outcome
    from sous_test_runner.kinds import KINDS, register

    class EvenCheck(BaseModel):
        kind: Literal["even"]
        output: str

    @register("even", EvenCheck)
    async def run_even(check: EvenCheck, ctx) -> Outcome:
        value = ctx.outputs.values[check.output]
        return Outcome.judged(value % 2 == 0, f"{value} is even?", value)

    try:
        with pytest.raises(ValueError, match="registered twice"):
            register("even", EvenCheck)(run_even)
        cmd = command(TestDefinition(name="even", kind="even", check={"output": "rows"}))
        [run] = await runner.run(cmd)
        assert run.status is TestStatus.PASSED
        assert run.outcome.message == "1200 is even?"
    finally:
        KINDS.pop("even")


async def test_resolved_secrets_never_reach_a_result() -> None:
    async def history(key, last):
        return []

    dsn = "postgresql://user:hunter2@db.internal:5432/wh"
    runner = SuiteRunner(PoolCache(), history, env={"SOUS_SECRET_SALES__WH": dsn})
    cmd = command(
        t(
            "leak",
            {
                "kind": "python",
                "function": "tests.test_runner.pychecks:leak",
                "op": "==",
                "value": "x",
            },
        ),
        connections={"wh": "secret:wh"},
    )
    [run] = await runner.run(cmd)
    assert run.status is TestStatus.FAILED
    assert "hunter2" not in run.outcome.message
    assert "hunter2" not in str(run.outcome.value)
    assert "<connection>" in run.outcome.value


async def test_checks_dumped_from_specs_validate(runner) -> None:
    # The scheduler sends `TestSpec.check.model_dump(mode="json")`, params already substituted.
    from sous_contracts.specs.tests import TestSpec

    specs = [
        {"name": "rows", "check": {"kind": "metric", "output": "rows", "value": "100"}},
        {"name": "trend", "check": {"kind": "history", "output": "rows", "max_z": 3}},
        {
            "name": "py",
            "check": {"kind": "python", "function": "tests.test_runner.pychecks:rows_positive"},
        },
        {
            "name": "fresh",
            "check": {"kind": "freshness", "table": "t", "column": "c", "max_age": "1d"},
        },
    ]
    definitions = []
    for raw in specs:
        spec = TestSpec.model_validate(raw)
        dumped = spec.check.model_dump(mode="json")
        definitions.append(TestDefinition(name=spec.name, kind=dumped["kind"], check=dumped))
    runs = {r.definition.name: r for r in await runner.run(command(*definitions))}
    assert runs["rows"].status is TestStatus.PASSED
    assert runs["trend"].status is TestStatus.PASSED
    assert runs["py"].status is TestStatus.PASSED
    # Validated fine; it errors only for want of a connection, a reason a person can act on.
    assert runs["fresh"].outcome.message == "no connection: name one with `connection:`"


async def test_connections_resolve_in_the_tested_steps_domain_and_kitchen() -> None:
    async def history(key, last):
        return []

    env = {
        "SOUS_SECRET_SALES__DEV__WH": "postgresql://sales-dev@h/db",
        "SOUS_SECRET_FINANCE__LEDGER": "postgresql://finance@h/db",
    }
    runner = SuiteRunner(PoolCache(), history, env=env)
    check = t("dsn", {"kind": "python", "function": "tests.test_runner.pychecks:uses_connection"})
    [own] = await runner.run(command(check, connections={"default": "secret:wh"}))
    [other] = await runner.run(command(check, connections={"default": "secret:ledger"}))
    [prod] = await runner.run(command(check, connections={"default": "secret:wh"}, kitchen="prod"))
    assert own.status is TestStatus.PASSED, own.outcome.message
    assert other.status is TestStatus.ERROR
    assert "not in the secret store of domain 'sales', kitchen 'dev'" in other.outcome.message
    assert prod.status is TestStatus.ERROR
    assert "kitchen 'prod'" in prod.outcome.message


async def test_no_more_suites_run_at_once_than_the_runner_allows() -> None:
    """Suites of a batch run side by side, but only `suites` at a time."""
    running = {"now": 0, "most": 0}

    async def history(key, last):
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        for _ in range(3):  # let every other suite that may start do so
            await asyncio.sleep(0)
        running["now"] -= 1
        return [1000.0]

    runner = SuiteRunner(PoolCache(), history, env={}, suites=2)
    trend = t("volume", {"kind": "history", "output": "rows", "within_pct": 50})
    suites = await asyncio.gather(*(runner.run(command(trend)) for _ in range(5)))

    assert [s[0].status for s in suites] == [TestStatus.PASSED] * 5
    assert running["most"] == 2
