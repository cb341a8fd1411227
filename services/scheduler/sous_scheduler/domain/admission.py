"""Admission: how many runs of a variation may run, and which runs take the slots.

One pure decision, `admit`, answers both questions the scheduler asks under a variation's
lock: may a new run begin (else it waits, is refused or pushes running runs out), and, when
a run ended, which queued runs take the slots it freed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sous_contracts.specs import ConcurrencySpec, RecipeSpec


def concurrency_of(recipe: RecipeSpec, variation: str) -> ConcurrencySpec:
    """Return the limit and policy of a variation: its own, else the recipe's."""
    policy = recipe.variations.get(variation)
    return (policy.concurrency if policy else None) or recipe.concurrency


def lock_key(domain: str, recipe: str, variation: str) -> str:
    """Return the name of the lock that serialises admission of one variation."""
    return f"{domain}/{recipe}/{variation}"


@dataclass(frozen=True)
class Admission:
    """What to do with a variation's runs; the service applies it in one transaction."""

    begin: tuple[uuid.UUID, ...] = ()
    """Runs that begin now, oldest first (the new run last, when it begins)."""
    queue_at: int | None = None
    """The new run waits in the queue at this place (1 = next to begin)."""
    cancel: tuple[uuid.UUID, ...] = ()
    """Runs cancelled: the new one (cancel-new) or the oldest running (cancel-running)."""
    reason: str | None = None
    """Why the runs in `cancel` are cancelled."""


@dataclass(frozen=True)
class Occupancy:
    """What admission looks at of a variation's runs: counts, and the oldest few ids."""

    running: int
    """Runs running now."""
    queued: int
    """Runs waiting in the queue, the new run (if any) not counted."""
    oldest_running: tuple[uuid.UUID, ...] = ()
    """The oldest running runs, at least as many as `heads` asks for."""
    oldest_queued: tuple[uuid.UUID, ...] = ()
    """The oldest queued runs (not the new one), at least as many as `heads` asks for."""


def heads(
    concurrency: ConcurrencySpec, running: int, queued: int, new_run: uuid.UUID | None
) -> tuple[int, int]:
    """Return how many of the oldest running and queued runs `admit_counted` reads.

    Queued runs take free slots only; running runs are read only to make room by
    cancelling them (cancel-running, for a new run).
    """
    free = max(0, concurrency.limit - running)
    pushing = new_run is not None and concurrency.policy == "cancel-running"
    return (max(0, running - concurrency.limit + 1) if pushing else 0), min(queued, free)


def admit(
    concurrency: ConcurrencySpec,
    running: Sequence[uuid.UUID],
    queued: Sequence[uuid.UUID],
    new_run: uuid.UUID | None = None,
    *,
    label: str = "",
) -> Admission:
    """Decide admission from every running and queued run of a variation, oldest first.

    The same decision as `admit_counted`, for callers that hold the whole lists.
    """
    waiting = tuple(q for q in queued if q != new_run)
    occupancy = Occupancy(len(running), len(waiting), tuple(running), waiting)
    return admit_counted(concurrency, occupancy, new_run, label=label)


def admit_counted(
    concurrency: ConcurrencySpec,
    occupancy: Occupancy,
    new_run: uuid.UUID | None = None,
    *,
    label: str = "",
) -> Admission:
    """Decide admission of one variation's runs.

    With a `new_run`, decide whether it begins, waits, is refused, or cancels running runs;
    without one (a run ended), hand the free slots to the oldest queued runs, one slot each.
    Free slots go to runs queued earlier before the new one, so a raised limit keeps the
    queue's order. `label` names the variation in reasons.
    """
    waiting = occupancy.oldest_queued
    free = max(0, concurrency.limit - occupancy.running)
    if new_run is None:
        return Admission(begin=tuple(waiting[:free]))
    if free > occupancy.queued:
        return Admission(begin=(*waiting, new_run))
    ahead = tuple(waiting[:free])
    if concurrency.policy == "queue":
        return Admission(begin=ahead, queue_at=occupancy.queued - len(ahead) + 1)
    if concurrency.policy == "cancel-new":
        reason = f"concurrency limit {concurrency.limit} reached"
        reason += f" for {label}" if label else ""
        return Admission(begin=ahead, cancel=(new_run,), reason=reason)
    # cancel-running: the newest run wins; the oldest running runs make room for it alone,
    # and runs queued earlier keep any other free slot.
    pushed = occupancy.oldest_running[: max(0, occupancy.running - concurrency.limit + 1)]
    return Admission(
        begin=(*waiting[: max(0, free - 1)], new_run),
        cancel=pushed,
        reason=f"cancelled: newer run {new_run}" if pushed else None,
    )
