"""The executor's own instruments: steps in flight, slots busy, attempts finished."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge

if TYPE_CHECKING:
    from sous_executor.service import Executor

STEPS_IN_FLIGHT = Gauge(
    "sous_steps_in_flight",
    "Attempts this replica holds: waiting for a slot, being taken or running (at scrape time).",
)
SLOTS_BUSY = Gauge("sous_executor_slots_busy", "Slots running an attempt now (at scrape time).")
SLOTS = Gauge("sous_executor_slots", "Slots of this replica (SOUS_EXECUTOR_CONCURRENCY).")
ATTEMPTS_FINISHED = Counter(
    "sous_step_attempts_finished_total",
    "Attempts this replica finished, by step kind and status.",
    ["kind", "status"],
)


async def read(executor: Executor) -> None:
    """Set the gauges from the executor's memory (on its event loop)."""
    STEPS_IN_FLIGHT.set(executor.holding)
    SLOTS_BUSY.set(len(executor.running))
    SLOTS.set(executor.settings.concurrency)
