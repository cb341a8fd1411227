"""Effects held back until a batch's transaction ends, then written in one statement each.

A batch handled in one transaction (order-run commands, completion events) would otherwise
write the outbox and the timers once per run: on a machine where each round trip is what
costs, that is most of a run's price. Held in a context variable, so only the task that
opened the batch sees it; everything else writes at once as before.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field

from sous_common.outbox import Record
from sous_contracts.envelope import Envelope
from sous_scheduler.domain.events import ClearTimer, SetTimer


@dataclass
class Pending:
    """The outgoing messages, records and timer changes of one transaction, in order."""

    messages: list[Envelope] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    timers: dict[uuid.UUID, list[SetTimer | ClearTimer]] = field(default_factory=dict)


PENDING: ContextVar[Pending | None] = ContextVar("sous_scheduler_pending", default=None)
"""The effects of the batch transaction this task is in, if any."""
