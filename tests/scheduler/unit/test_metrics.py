"""The scheduler counts the run events of committed transactions by domain and status."""

from __future__ import annotations

from prometheus_client import REGISTRY

from sous_contracts.common import RunStatus
from sous_contracts.runs import OrderRunFinished, OrderRunStarted
from sous_contracts.testing import sample_messages
from sous_scheduler import metrics


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_runs_are_counted_by_domain_and_final_status() -> None:
    started = next(m for m in sample_messages() if isinstance(m, OrderRunStarted))
    finished = next(m for m in sample_messages() if isinstance(m, OrderRunFinished))
    failed = finished.model_copy(update={"domain": "metrics-unit", "status": RunStatus.FAILED})
    started = started.model_copy(update={"domain": "metrics-unit"})
    metrics.committed([started, failed, failed])
    assert value("sous_runs_started_total", domain="metrics-unit") == 1
    assert value("sous_runs_finished_total", domain="metrics-unit", status="failed") == 2
    assert value("sous_runs_finished_total", domain="metrics-unit", status="succeeded") == 0
