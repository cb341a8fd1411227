"""What an order-run command may carry: size limits checked before anything is read for it.

A field that is indexed or copied into every event of a run is bounded here, so a command
over a limit is answered with OrderRunRejected naming the field, never a database error
retried and dead-lettered (the schema of major version 2 cannot tighten its bounds).
"""

from __future__ import annotations

from sous_contracts.runs import (
    CANCEL_REASON_MAX,
    IDEMPOTENCY_KEY_MAX,
    CancelOrderRun,
    StartOrderRun,
)
from sous_scheduler.domain.plan import Rejected

RECIPE_REF_MAX = 127
"""Longest `domain/recipe` reference: two names of at most 63 characters and a slash."""


def _at_most(field: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise Rejected(f"{field}: {len(value)} characters, longer than the limit of {limit}")


def check_start(cmd: StartOrderRun) -> None:
    """Refuse a start carrying text no run can store or index.

    Raises:
        Rejected: the field, its length and the limit.
    """
    _at_most("idempotency_key", cmd.idempotency_key, IDEMPOTENCY_KEY_MAX)
    _at_most("parent_recipe", cmd.parent_recipe, RECIPE_REF_MAX)
    _at_most("root_recipe", cmd.root_recipe, RECIPE_REF_MAX)


def check_cancel(cmd: CancelOrderRun) -> None:
    """Refuse a cancel whose reason is too long to copy into the run's events.

    Raises:
        Rejected: the field, its length and the limit.
    """
    _at_most("reason", cmd.reason, CANCEL_REASON_MAX)
