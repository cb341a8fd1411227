"""The test-runner's own instruments: test results by severity and status."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter

from sous_contracts.envelope import Envelope
from sous_contracts.tests import TestResult

TEST_RESULTS = Counter(
    "sous_test_results_total",
    "Data test results recorded, by declared severity and status.",
    ["severity", "status"],
)


def committed(messages: Iterable[Envelope]) -> None:
    """Count the results of a suite whose transaction committed."""
    for m in messages:
        if isinstance(m, TestResult):
            TEST_RESULTS.labels(m.severity.value, m.status.value).inc()
