"""Backfills: one order run per partition of a range, with bounded concurrency.

The range expansion lives here, once: the CLI previews and validates with it, the REST API
answers 400 with its reason, and the scheduler expands the command with it.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from sous_contracts.common import Name, Params
from sous_contracts.envelope import Contract, Envelope

MAX_PARTITIONS = 10_000
"""Most partitions one backfill may have."""
MAX_CONCURRENCY = 100
"""Most partitions of one backfill that may run at once."""

PartitionValue = str | int
"""One partition's value of the range parameter: an ISO date or an integer."""

_DATE_STEP = re.compile(r"^([1-9][0-9]{0,3})([dw])$")
_INT = re.compile(r"^-?[0-9]{1,18}$")


class RangeError(ValueError):
    """A range that cannot be expanded; the message says what is wrong."""


class BackfillRange(Contract):
    """The partitions of a backfill: `param` from `start` to `end` inclusive, by `step`."""

    param: Name
    """Parameter each run receives its partition in (e.g. `day`)."""
    start: str
    """First partition: an ISO date (`2026-11-01`) or an integer."""
    end: str
    """Last partition, inclusive, of the same kind as `start`."""
    step: str | None = None
    """Distance between partitions: `1d`, `7d`, `2w` for dates, an integer for integers;
    None takes `1d` or `1`."""

    def text(self) -> str:
        """Return the range as the CLI writes it (`day=2026-11-01..2026-11-07`)."""
        return f"{self.param}={self.start}..{self.end}"


def _point(text: str, which: str, where: str) -> date | int:
    if _INT.match(text):
        return int(text)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RangeError(
            f"{where}: {which} '{text}' is neither an ISO date nor an integer"
        ) from None


def expand(rng: BackfillRange) -> list[PartitionValue]:
    """Return the partition values of a range, in order.

    Raises:
        RangeError: a start or end that is neither a date nor an integer, mixed kinds, a bad
            step, an end before the start, or more than `MAX_PARTITIONS` partitions.
    """
    where = f"range {rng.text()}"
    first, last = _point(rng.start, "start", where), _point(rng.end, "end", where)
    if isinstance(first, date) and isinstance(last, date):
        match = _DATE_STEP.match(rng.step or "1d")
        if match is None:
            raise RangeError(f"{where}: step '{rng.step}' is not a date step (like 1d, 7d or 2w)")
        days = int(match.group(1)) * (7 if match.group(2) == "w" else 1)
        if last < first:
            raise RangeError(f"{where}: the end is before the start")
        count = (last - first).days // days + 1
        _check_count(where, count)
        return [(first + timedelta(days=days * i)).isoformat() for i in range(count)]
    if not isinstance(first, int) or not isinstance(last, int):
        raise RangeError(f"{where}: start and end must both be dates or both be integers")
    step_text = rng.step or "1"
    if not _INT.match(step_text) or int(step_text) <= 0:
        raise RangeError(f"{where}: step '{step_text}' is not a positive integer")
    step = int(step_text)
    if last < first:
        raise RangeError(f"{where}: the end is before the start")
    count = (last - first) // step + 1
    _check_count(where, count)
    return list(range(first, last + 1, step))


def _check_count(where: str, count: int) -> None:
    if count > MAX_PARTITIONS:
        raise RangeError(f"{where}: {count} partitions, more than the limit of {MAX_PARTITIONS}")


def parse_range(text: str, step: str | None = None) -> BackfillRange:
    """Read `PARAM=START..END` as the CLI takes it, and check that it expands.

    Raises:
        RangeError: the text is not `PARAM=START..END`, or the range does not expand.
    """
    param, equals, span = text.partition("=")
    start, dots, end = span.partition("..")
    if not equals or not dots or not param or not start or not end:
        raise RangeError(
            f"range '{text}' is not PARAM=START..END (like day=2026-11-01..2026-11-30)"
        )
    if not re.match(r"^[a-z][a-z0-9_-]{0,62}$", param):
        raise RangeError(f"range '{text}': '{param}' is not a parameter name")
    rng = BackfillRange(param=param, start=start, end=end, step=step)
    expand(rng)
    return rng


def partition_key(value: PartitionValue) -> str:
    """Return the key naming a partition (its value as text)."""
    return str(value)


class StartBackfill(Envelope):
    """Command: run one variation of a recipe once per partition of a range."""

    KEY_FIELD: ClassVar[str] = "backfill_id"

    type: Literal["StartBackfill"] = "StartBackfill"
    backfill_id: uuid.UUID
    """Id the backfill will have; chosen by the caller, so a repeated command starts nothing."""
    domain: Name
    """Domain that owns the recipe."""
    recipe: Name
    """Recipe to run."""
    variation: Name | None = None
    """Variation to run; None runs the recipe's default variation in `kitchen`."""
    kitchen: Name | None = None
    """Kitchen to run in; None takes the variation's kitchen."""
    params: Params = Field(default_factory=dict)
    """Parameter overrides every partition's run gets (the range parameter wins over them)."""
    range: BackfillRange
    """The partitions."""
    concurrency: int = Field(default=1, ge=1, le=MAX_CONCURRENCY)
    """Most partitions running at once."""
    downstream: bool = False
    """True lets the partitions' completions fire downstream triggers; they do not by default."""
    principal: str | None = None
    """Who asks; needs the `run` scope on the domain."""

    @model_validator(mode="after")
    def _range_expands(self) -> StartBackfill:
        expand(self.range)
        return self


class CancelBackfill(Envelope):
    """Command: stop a backfill; waiting partitions are cancelled, running runs cancelled."""

    KEY_FIELD: ClassVar[str] = "backfill_id"

    type: Literal["CancelBackfill"] = "CancelBackfill"
    backfill_id: uuid.UUID
    """Backfill to cancel."""
    reason: str = "cancelled by request"
    """Why, shown to people."""
    principal: str | None = None
    """Who asks; needs the `run` scope on the backfill's domain."""


class RetryBackfill(Envelope):
    """Command: run the failed partitions of a backfill again (a new attempt each)."""

    KEY_FIELD: ClassVar[str] = "backfill_id"

    type: Literal["RetryBackfill"] = "RetryBackfill"
    backfill_id: uuid.UUID
    """Backfill whose failed partitions run again."""
    principal: str | None = None
    """Who asks; needs the `run` scope on the backfill's domain."""


class BackfillStatus(StrEnum):
    """Where a backfill stands."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class PartitionState(StrEnum):
    """Where one partition of a backfill stands."""

    WAITING = "waiting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class BackfillCounts(Contract):
    """How many partitions are in each state."""

    total: int = 0
    """Every partition."""
    done: int = 0
    """Succeeded."""
    failed: int = 0
    """Failed (their last attempt)."""
    running: int = 0
    """Started and not ended."""
    waiting: int = 0
    """Not started yet."""
    cancelled: int = 0
    """Cancelled before or while running."""


class PartitionUpdate(Contract):
    """One partition's new state."""

    key: str
    """The partition (its range value as text)."""
    state: PartitionState
    """Where it stands now."""
    order_run_id: uuid.UUID | None = None
    """Its run (of the latest attempt), once started."""
    attempt: int = 0
    """Attempts started (1 for the first run, more after retries)."""
    reason: str | None = None
    """Why its run failed or was cancelled."""


class BackfillUpdated(Envelope):
    """Event: a backfill changed; the counts are whole, `partitions` only what changed.

    Only the changed partitions travel, so an update stays small for 10,000 partitions;
    a reader keeps the latest state of each partition it has seen (waiting ones are
    counted, and named once they start).
    """

    KEY_FIELD: ClassVar[str] = "backfill_id"

    type: Literal["BackfillUpdated"] = "BackfillUpdated"
    backfill_id: uuid.UUID
    """The backfill."""
    domain: Name
    """Owning domain."""
    recipe: Name
    """Recipe."""
    variation: Name
    """Variation."""
    kitchen: Name
    """Kitchen."""
    range: BackfillRange
    """The partitions."""
    concurrency: int
    """Most partitions running at once."""
    downstream: bool = False
    """Whether completions fire downstream triggers."""
    status: BackfillStatus
    """Where the backfill stands."""
    counts: BackfillCounts
    """Partitions by state."""
    partitions: list[PartitionUpdate] = Field(default_factory=list)
    """The partitions whose state changed with this update."""
    principal: str | None = None
    """Who started it."""
    reason: str | None = None
    """Why it was cancelled, when it was."""


class BackfillRejected(Envelope):
    """Event: a StartBackfill, CancelBackfill or RetryBackfill could not be accepted."""

    KEY_FIELD: ClassVar[str] = "backfill_id"

    type: Literal["BackfillRejected"] = "BackfillRejected"
    backfill_id: uuid.UUID
    """Id the command named."""
    command: str
    """The refused command's type."""
    reason: str
    """What is wrong, in words a person can act on."""
    domain: str | None = None
    """Domain the command named, when it named one."""
    recipe: str | None = None
    """Recipe the command named, when it named one."""
