"""`sous run --wait` and `sous tail` print what events say, however it is spelled."""

from __future__ import annotations

import uuid

import pytest

from sous import run_view
from sous_contracts.common import RunStatus
from sous_contracts.runs import OrderRunFinished, TestSummary
from sous_contracts.steps import StepFinished, StepSkipped
from sous_contracts.tests import TestResult
from tests.cli.render import render

RUN = uuid.uuid4()
TRICKY = "value [1, 2] >= [/] [bold]4"


def result(status: str, severity: str) -> TestResult:
    return TestResult(
        producer="test-runner",
        order_run_id=RUN,
        step_run_id=uuid.uuid4(),
        suite_id=uuid.uuid4(),
        step="model",
        test="enough_rows",
        kind="row_count",
        severity=severity,
        status=status,
        domain="sales",
        recipe="daily",
        kitchen="dev",
        message=TRICKY,
    )


@pytest.mark.parametrize(
    ("status", "severity"),
    [("log", "log"), ("error", "error"), ("failed", "error"), ("warning", "warning")],
)
def test_a_test_result_shows_its_message_as_written(status: str, severity: str) -> None:
    rows: dict[str, list[str]] = {}
    tests: list = []
    assert run_view.show(result(status, severity), rows, tests) is None
    out = render(run_view.watch_table("sales/daily", rows, tests))
    assert f"{status} model.enough_rows: {TRICKY}" in out
    assert f"{TRICKY}" in run_view.tail_line(result(status, severity))


def test_a_run_that_succeeded_with_a_failed_log_test_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows: dict[str, list[str]] = {}
    tests: list = []
    step = StepFinished(
        producer="executor",
        order_run_id=RUN,
        step_run_id=uuid.uuid4(),
        step="model",
        attempt=1,
        worker_id="executor-1",
        status="succeeded",
    )
    finished = OrderRunFinished(
        producer="scheduler",
        order_run_id=RUN,
        domain="sales",
        recipe="daily",
        variation="dev",
        kitchen="dev",
        status=RunStatus.SUCCEEDED,
        reason="[not markup]",
        tests=TestSummary(passed=1),
    )
    assert run_view.show(step, rows, tests) is None
    assert run_view.show(result("log", "log"), rows, tests) is None
    assert run_view.show(finished, rows, tests) == 0
    assert "run succeeded: [not markup]" in capsys.readouterr().out
    assert "model" in render(run_view.watch_table("sales/daily", rows, tests))


def test_a_skipped_step_shows_in_the_live_table_with_its_reason():
    rows: dict[str, list[str]] = {}
    skipped = StepSkipped(
        producer="scheduler",
        order_run_id=RUN,
        step_run_id=uuid.uuid4(),
        step="publish",
        reason="when 'params.publish' was false (params.publish = false)",
        when="params.publish",
        seen={"params.publish": False},
    )
    assert run_view.show(skipped, rows, []) is None
    out = render(run_view.watch_table("sales/daily", rows, []))
    assert "skipped" in out
    assert "when 'params.publish' was false (params.publish = false)" in out
