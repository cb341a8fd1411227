"""Pure decisions of backfills: how many partitions start, their run ids, the status."""

from __future__ import annotations

import uuid
from typing import Any

from sous_contracts.backfills import (
    BackfillCounts,
    BackfillStatus,
    PartitionState,
    PartitionValue,
    StartBackfill,
)
from sous_contracts.common import RunStatus


def free_slots(concurrency: int, counts: BackfillCounts, cancelled: bool) -> int:
    """How many waiting partitions may start now; none once the backfill is cancelled."""
    if cancelled:
        return 0
    return max(0, min(concurrency - counts.running, counts.waiting))


def status_of(counts: BackfillCounts, cancelled: bool) -> BackfillStatus:
    """A backfill runs while a partition runs or waits; then failures, cancels, success."""
    if counts.running or counts.waiting:
        return BackfillStatus.RUNNING
    if cancelled:
        return BackfillStatus.CANCELLED
    if counts.failed:
        return BackfillStatus.FAILED
    if counts.cancelled:  # a partition's run was cancelled on its own
        return BackfillStatus.CANCELLED
    return BackfillStatus.SUCCEEDED


def counts_of(states: dict[PartitionState, int]) -> BackfillCounts:
    """Counts of partitions by state."""
    return BackfillCounts(
        total=sum(states.values()),
        done=states.get(PartitionState.SUCCEEDED, 0),
        failed=states.get(PartitionState.FAILED, 0),
        running=states.get(PartitionState.RUNNING, 0),
        waiting=states.get(PartitionState.WAITING, 0),
        cancelled=states.get(PartitionState.CANCELLED, 0),
    )


def ended(status: RunStatus) -> PartitionState:
    """The state a partition takes when its run ends."""
    return PartitionState(status.value)


def run_id(backfill_id: uuid.UUID, key: str, attempt: int) -> uuid.UUID:
    """The run id of one attempt of a partition: the same on every replica and every replay."""
    return uuid.uuid5(backfill_id, f"{key}:{attempt}")


def idempotency_key(backfill_id: uuid.UUID, key: str, attempt: int) -> str:
    """The idempotency key of one attempt of a partition."""
    return f"backfill:{backfill_id}:{key}:{attempt}"


def run_params(cmd: StartBackfill, value: PartitionValue) -> dict[str, Any]:
    """Params of a partition's run: the command's, with the range parameter set."""
    return {**cmd.params, cmd.range.param: value}
