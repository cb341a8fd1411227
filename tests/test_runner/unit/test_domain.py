"""Pure logic: operators, statuses, summaries and history judgement."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sous_contracts.common import Severity, TestStatus
from sous_test_runner.domain.compare import NotComparable, compare, describe, jsonable
from sous_test_runner.domain.history import judge_history
from sous_test_runner.domain.outcome import Outcome, status_of, summarize


@pytest.mark.parametrize(
    ("left", "op", "right", "expected"),
    [
        (1200, ">", 0, True),
        (Decimal("10.0"), "==", 10, True),
        (Decimal("0.1"), "==", 0.1, True),
        (5, ">=", "5", True),  # params arrive as text after substitution
        ("7", "<", 10, True),
        (3.5, "!=", 3.5, False),
        ("a", "==", "a", True),
        (None, "==", None, True),
        (0, "<=", -1, False),
    ],
)
def test_compare(left, op, right, expected) -> None:
    assert compare(left, op, right) is expected


@pytest.mark.parametrize(("left", "op", "right"), [("abc", ">", 5), (None, ">", 1), (1, "~", 1)])
def test_compare_refuses_what_does_not_compare(left, op, right) -> None:
    with pytest.raises(NotComparable):
        compare(left, op, right)


def test_describe_and_jsonable() -> None:
    assert describe("rows", Decimal("1200"), ">", 0) == "rows 1200 > 0"
    assert jsonable(Decimal("1.5")) == 1.5
    assert jsonable(float("nan")) == "nan"
    assert jsonable({"a": (Decimal(2),)}) == {"a": [2]}


@pytest.mark.parametrize(
    ("holds", "severity", "status"),
    [
        (True, Severity.ERROR, TestStatus.PASSED),
        (False, Severity.ERROR, TestStatus.FAILED),
        (False, Severity.WARNING, TestStatus.WARNING),
        (False, Severity.LOG, TestStatus.LOG),
        (None, Severity.LOG, TestStatus.ERROR),
        (None, Severity.ERROR, TestStatus.ERROR),
    ],
)
def test_status_of(holds, severity, status) -> None:
    assert status_of(Outcome(holds), severity) is status


def test_summary_counts_and_blocking() -> None:
    summary, blocking = summarize(
        [
            ("a", Severity.ERROR, TestStatus.PASSED),
            ("b", Severity.ERROR, TestStatus.FAILED),
            ("c", Severity.ERROR, TestStatus.ERROR),
            ("d", Severity.WARNING, TestStatus.WARNING),
            ("e", Severity.WARNING, TestStatus.ERROR),  # errors, but does not block
            ("f", Severity.LOG, TestStatus.LOG),
        ]
    )
    assert (summary.passed, summary.failed, summary.warnings) == (1, 1, 1)
    assert (summary.errors, summary.logged, summary.total) == (2, 1, 6)
    assert blocking == ["b", "c"]


def test_history_not_judged_before_enough_runs() -> None:
    outcome = judge_history(100, [1000, 1000], min_history=3, within_pct=50, max_z=None)
    assert outcome.holds is True
    assert "not judged" in outcome.message


def test_history_catches_a_tenfold_drop_by_percentage() -> None:
    earlier = [1000, 990, 1010, 1005, 995]
    assert judge_history(1003, earlier, min_history=3, within_pct=20, max_z=None).holds is True
    dropped = judge_history(100, earlier, min_history=3, within_pct=20, max_z=None)
    assert dropped.holds is False
    assert "90.0% from mean 1000" in dropped.message
    assert dropped.threshold["mean"] == 1000


def test_history_by_z_score() -> None:
    earlier = [1000, 990, 1010, 1005, 995]
    assert judge_history(1012, earlier, min_history=3, within_pct=None, max_z=3).holds is True
    assert judge_history(100, earlier, min_history=3, within_pct=None, max_z=3).holds is False


def test_history_with_constant_values_passes_only_that_value() -> None:
    same = [5.0, 5.0, 5.0]
    assert judge_history(5, same, min_history=3, within_pct=None, max_z=1).holds is True
    assert judge_history(6, same, min_history=3, within_pct=None, max_z=1).holds is False


def test_history_without_a_bound_is_an_error() -> None:
    assert judge_history(1, [1, 1, 1], min_history=1, within_pct=None, max_z=None).holds is None
