"""Timer changes held back until a batch's transaction ends, then written together.

A batch handled in one transaction (order-run commands, completion events) would otherwise
write the timers once per run: on a machine where each round trip is what costs, that adds
up (the outbox rows of any `Runtime.transaction` wait for its end the same way). Held in a
context variable, so only the task that opened the batch sees it; everything else writes at
once as before.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field

from sous_scheduler.domain.events import ClearTimer, SetTimer


@dataclass
class Pending:
    """The timer changes of one transaction, by run, in order."""

    timers: dict[uuid.UUID, list[SetTimer | ClearTimer]] = field(default_factory=dict)
    registry_generation: int | None = None
    """The registry view's generation, when the batch read it with its inbox claim: the
    catalogs its starts need may then come from those read before at that generation."""


PENDING: ContextVar[Pending | None] = ContextVar("sous_scheduler_pending", default=None)
"""The effects of the batch transaction this task is in, if any."""
