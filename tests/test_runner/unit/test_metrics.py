"""The test-runner counts the results of committed suites by severity and status."""

from __future__ import annotations

from prometheus_client import REGISTRY

from sous_contracts.common import Severity, TestStatus
from sous_contracts.testing import sample_messages
from sous_contracts.tests import TestResult
from sous_test_runner import metrics


def test_results_are_counted_by_severity_and_status() -> None:
    result = next(m for m in sample_messages() if isinstance(m, TestResult))
    warned = result.model_copy(update={"severity": Severity.WARNING, "status": TestStatus.WARNING})
    before = (
        REGISTRY.get_sample_value(
            "sous_test_results_total", {"severity": "warning", "status": "warning"}
        )
        or 0.0
    )
    metrics.committed([warned, warned])
    after = REGISTRY.get_sample_value(
        "sous_test_results_total", {"severity": "warning", "status": "warning"}
    )
    assert after == before + 2
