"""What one test found, how its severity turns that into a status, and the suite's summary."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sous_contracts.common import Severity, TestStatus, TestSummary


@dataclass(frozen=True)
class Outcome:
    """The finding of one test, before its severity is applied."""

    holds: bool | None
    """True when the check holds, False when it does not, None when the test could not run."""
    value: Any = None
    """Measured value (JSON-friendly)."""
    threshold: Any = None
    """What the value was compared with (JSON-friendly)."""
    message: str = ""
    """Explanation for people."""

    @classmethod
    def passed(cls, message: str, value: Any = None, threshold: Any = None) -> Outcome:
        """A check that holds."""
        return cls(True, value, threshold, message)

    @classmethod
    def failed(cls, message: str, value: Any = None, threshold: Any = None) -> Outcome:
        """A check that does not hold."""
        return cls(False, value, threshold, message)

    @classmethod
    def error(cls, message: str, value: Any = None, threshold: Any = None) -> Outcome:
        """A test that could not run; the message says why."""
        return cls(None, value, threshold, message)

    @classmethod
    def judged(cls, holds: bool, message: str, value: Any, threshold: Any = None) -> Outcome:
        """A check that holds or not, with one message either way."""
        return cls(holds, value, threshold, message)


_FAILED = {
    Severity.ERROR: TestStatus.FAILED,
    Severity.WARNING: TestStatus.WARNING,
    Severity.LOG: TestStatus.LOG,
}


def status_of(outcome: Outcome, severity: Severity) -> TestStatus:
    """Return the status: passed, the severity's failure status, or error (could not run)."""
    if outcome.holds is None:
        return TestStatus.ERROR
    if outcome.holds:
        return TestStatus.PASSED
    return _FAILED[severity]


def blocks(status: TestStatus, severity: Severity) -> bool:
    """True when a result stops the step: an error-severity test that failed or errored."""
    return severity is Severity.ERROR and status in (TestStatus.FAILED, TestStatus.ERROR)


def summarize(results: Iterable[tuple[str, Severity, TestStatus]]) -> tuple[TestSummary, list[str]]:
    """Count (name, severity, status) results; return the summary and the blocking names."""
    counts = {status: 0 for status in TestStatus}
    blocking: list[str] = []
    for name, severity, status in results:
        counts[status] += 1
        if blocks(status, severity):
            blocking.append(name)
    summary = TestSummary(
        passed=counts[TestStatus.PASSED],
        failed=counts[TestStatus.FAILED],
        warnings=counts[TestStatus.WARNING],
        errors=counts[TestStatus.ERROR],
        logged=counts[TestStatus.LOG],
    )
    return summary, blocking
