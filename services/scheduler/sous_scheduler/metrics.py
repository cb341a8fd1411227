"""The scheduler's own instruments: runs started and finished, timers due, batches redone."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge

from sous_contracts.envelope import Envelope
from sous_contracts.runs import OrderRunFinished, OrderRunStarted

RUNS_STARTED = Counter("sous_runs_started_total", "Order runs started.", ["domain"])
RUNS_FINISHED = Counter(
    "sous_runs_finished_total", "Order runs finished, by final status.", ["domain", "status"]
)
TIMERS_DUE = Gauge(
    "sous_timers_due",
    "Durable timers past their due time not fired yet (read at scrape time).",
)

BATCHES_REDONE = Counter(
    "sous_scheduler_batches_redone_total",
    "Batches of step events written at once on the states known in memory that found a run"
    " changed or an event seen before, and were handled again under locks.",
)


def at_once_conflict() -> None:
    """Count a batch whose statement written at once was undone (see `Scheduler`)."""
    BATCHES_REDONE.inc()


def committed(messages: Iterable[Envelope]) -> None:
    """Count the run events of a transaction that committed."""
    for m in messages:
        if isinstance(m, OrderRunStarted):
            RUNS_STARTED.labels(m.domain).inc()
        elif isinstance(m, OrderRunFinished):
            RUNS_FINISHED.labels(m.domain, m.status.value).inc()


def timers_due(count: int) -> None:
    """Set the timers-due gauge."""
    TIMERS_DUE.set(count)
