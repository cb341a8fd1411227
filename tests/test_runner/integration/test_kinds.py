"""Every test kind passing, failing and erroring, on real PostgreSQL and Kafka."""

from __future__ import annotations

import pytest

from sous_contracts import decode_message
from sous_contracts.common import TestStatus
from sous_contracts.tests import TestResult
from tests.test_runner.integration.harness import check_def, run_tests

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

PY = "tests.test_runner.pychecks"
P, F, W, L, E = (
    TestStatus.PASSED,
    TestStatus.FAILED,
    TestStatus.WARNING,
    TestStatus.LOG,
    TestStatus.ERROR,
)


def every_kind(wh: str) -> list[tuple]:
    """(definition, expected status, text the message must contain)."""
    o, m, nowhere = f"{wh}.orders", f"{wh}.messy", f"{wh}.nowhere"
    av = {"kind": "accepted_values", "column": "status", "values": ["new", "paid", "shipped"]}
    fresh = {"kind": "freshness", "column": "created_at", "max_age": "1d"}
    typed = {"id": "integer", "amount": "numeric", "created_at": "timestamp with time zone"}
    c = check_def
    count = f"SELECT count(*) FROM {o}"
    return [
        (c("sql-pass", {"kind": "sql", "query": count, "op": ">", "value": 0}), P, "1200 > 0"),
        (c("sql-fail", {"kind": "sql", "query": count, "value": 1}), F, "1200 == 1"),
        (c("sql-bad", {"kind": "sql", "query": "SELEC oops", "value": 1}), E, "syntax error"),
        (
            c(
                "sql-slow",
                {"kind": "sql", "query": "SELECT pg_sleep(5)", "value": 1},
                timeout_s=0.5,
            ),
            E,
            "timed out after 0.5s",
        ),
        (c("sql-warn", {"kind": "sql", "query": count, "op": "<", "value": 5}, "warning"), W, ""),
        (c("sql-log", {"kind": "sql", "query": count, "op": "<", "value": 5}, "log"), L, ""),
        (c("metric-pass", {"kind": "metric", "output": "rows", "op": ">=", "value": 1000}), P, ""),
        (c("metric-fail", {"kind": "metric", "output": "rows", "op": "<", "value": 10}), F, ""),
        (c("metric-err", {"kind": "metric", "output": "nope", "value": 1}), E, "no output"),
        (c("rc-pass", {"kind": "row_count", "table": o, "min": 1000, "max": 2000}), P, "1200"),
        (
            c("rc-fail", {"kind": "row_count", "table": o, "where": "status = 'paid'", "min": 500}),
            F,
            "rows 400 < min 500",
        ),
        (c("rc-err", {"kind": "row_count", "table": nowhere}), E, "does not exist"),
        (c("nn-pass", {"kind": "not_null", "table": o, "columns": ["customer", "status"]}), P, ""),
        (
            c("nn-fail", {"kind": "not_null", "table": m, "columns": ["id", "customer"]}),
            F,
            "1 NULL",
        ),
        (c("nn-err", {"kind": "not_null", "table": o, "columns": ["ghost"]}), E, "ghost"),
        (c("uq-pass", {"kind": "unique", "table": o, "columns": ["id"]}), P, ""),
        (c("uq-fail", {"kind": "unique", "table": m, "columns": ["id"]}), F, "1 duplicated"),
        (c("uq-err", {"kind": "unique", "table": nowhere, "columns": ["id"]}), E, "not exist"),
        (c("av-pass", {**av, "table": o}), P, ""),
        (c("av-fail", {**av, "table": m}), F, "2 row(s) of status outside"),
        (c("av-err", {**av, "table": nowhere}), E, "does not exist"),
        (c("fresh-pass", {**fresh, "table": o}), P, ""),
        (c("fresh-fail", {**fresh, "table": m}), F, "old (> 86400s)"),
        (c("fresh-err", {**fresh, "table": o, "column": "ghost"}), E, "ghost"),
        (c("schema-pass", {"kind": "schema", "table": o, "columns": typed}), P, "3 column(s)"),
        (
            c("schema-fail", {"kind": "schema", "table": o, "columns": {"id": "text", "x": "int"}}),
            F,
            "id is integer, expected text; x missing",
        ),
        (c("schema-err", {"kind": "schema", "table": nowhere, "columns": typed}), E, "not exist"),
        (c("hist-pass", {"kind": "history", "output": "rows", "within_pct": 10}), P, "not judged"),
        (c("hist-err", {"kind": "history", "output": "nope", "within_pct": 10}), E, "no output"),
        (c("py-pass", {"kind": "python", "function": f"{PY}:rows_positive"}), P, "True"),
        (
            c("py-fail", {"kind": "python", "function": f"{PY}:ratio", "op": ">", "value": 2}),
            F,
            "1.2 > 2",
        ),
        (c("py-err", {"kind": "python", "function": f"{PY}:broken"}), E, "itself is broken"),
        (c("py-conn", {"kind": "python", "function": f"{PY}:uses_connection"}), P, ""),
        (
            c("invalid", {"kind": "row_count", "table": o, "min": "lots"}),
            E,
            "invalid RowCountCheck",
        ),
    ]


async def test_every_kind_passes_fails_and_errors(runner, console, warehouse) -> None:
    cases = every_kind(warehouse)
    command = run_tests(*(d for d, _, _ in cases))

    finished, results = await console.run(command)

    assert set(results) == {d.name for d, _, _ in cases}
    for definition, status, text in cases:
        result = results[definition.name]
        assert (definition.name, result.status) == (definition.name, status), result.message
        assert text in result.message, (definition.name, result.message)
        assert result.kind == definition.kind
        assert (result.domain, result.recipe, result.kitchen) == ("sales", "daily", "dev")
        assert (result.variation, result.step) == ("dev", "load")
        assert result.order_run_id == command.order_run_id
        assert result.causation_id == command.message_id
        assert result.duration_s >= 0
    assert results["sql-pass"].value == 1200
    assert results["sql-pass"].threshold == 0
    assert results["fresh-fail"].threshold == 86400
    assert results["sql-slow"].duration_s < 3

    counts = {s: sum(1 for _, st, _ in cases if st is s) for s in TestStatus}
    assert finished.summary.passed == counts[P]
    assert finished.summary.failed == counts[F]
    assert finished.summary.errors == counts[E]
    assert (finished.summary.warnings, finished.summary.logged) == (1, 1)
    assert finished.blocking is True
    assert set(finished.failed_tests) == {d.name for d, st, _ in cases if st in (F, E)}


async def test_an_ops_console_reads_valid_results(runner, console, warehouse) -> None:
    command = run_tests(
        check_def("rows", {"kind": "metric", "output": "rows", "op": ">", "value": 0}),
        check_def("cheap", {"kind": "metric", "output": "rows", "op": "<", "value": 5}, "warning"),
    )
    finished, results = await console.run(command)
    assert finished.blocking is False
    assert finished.failed_tests == []
    assert finished.summary.passed == 1
    assert finished.summary.warnings == 1
    # The console's own consumer group got plain JSON that validates with the contracts.
    decoded = [decode_message(raw) for raw in console.raw]
    assert {type(m).__name__ for m in decoded} == {"TestResult", "TestSuiteFinished"}
    assert all(isinstance(m, TestResult) for m in decoded if m.type == "TestResult")
    assert results["cheap"].message == "rows 1200 < 5"


async def test_connections_that_fail_are_errors_without_secrets(
    runner, console, warehouse, db_settings, tmp_path, monkeypatch
) -> None:
    (tmp_path / "sales").mkdir()
    (tmp_path / "sales" / "closed").write_text("postgresql://sous:hunter2@127.0.0.1:1/sous")
    monkeypatch.setenv("SOUS_SECRET_SALES__WAREHOUSE_SECRET", db_settings.url)
    query = {"kind": "sql", "query": "SELECT 1", "value": 1}
    command = run_tests(
        check_def("closed-port", {**query, "connection": "closed"}, timeout_s=5),
        check_def("by-secret", {**query, "connection": "warehouse_secret"}),
        check_def("unnamed", query, "warning"),
        check_def("unknown", {**query, "connection": "elsewhere"}, "log"),
        connections={
            "closed": "secret:closed",
            "warehouse_secret": "secret:warehouse_secret",
            "warehouse": "secret:warehouse",
        },
    )
    finished, results = await console.run(command)
    assert results["closed-port"].status is E
    assert "cannot connect" in results["closed-port"].message
    assert results["by-secret"].status is P
    assert results["unnamed"].status is E
    assert "no connection: name one with `connection:`" in results["unnamed"].message
    assert results["unknown"].status is E
    # Errors of non-error severities count as errors but do not block.
    assert finished.failed_tests == ["closed-port"]
    assert finished.summary.errors == 3
    assert not any(b"hunter2" in raw for raw in console.raw)
