"""Pure decisions of backfills: free slots, status, run ids and params."""

from __future__ import annotations

import uuid

import pytest

from sous_contracts.backfills import (
    BackfillCounts,
    BackfillRange,
    BackfillStatus,
    PartitionState,
    StartBackfill,
)
from sous_contracts.common import RunStatus
from sous_scheduler.domain.backfills import (
    counts_of,
    ended,
    free_slots,
    idempotency_key,
    run_id,
    run_params,
    status_of,
)

BACKFILL = uuid.UUID("01890a5d-ac96-774b-bcce-b302099a805a")


@pytest.mark.parametrize(
    ("concurrency", "running", "waiting", "cancelled", "free"),
    [
        (3, 0, 10, False, 3),
        (3, 2, 10, False, 1),
        (3, 3, 10, False, 0),
        (3, 0, 2, False, 2),  # fewer waiting than slots
        (3, 4, 5, False, 0),  # never negative
        (3, 0, 10, True, 0),  # a cancelled backfill starts nothing
    ],
)
def test_free_slots(concurrency, running, waiting, cancelled, free) -> None:
    counts = BackfillCounts(total=running + waiting, running=running, waiting=waiting)
    assert free_slots(concurrency, counts, cancelled) == free


@pytest.mark.parametrize(
    ("counts", "cancelled", "status"),
    [
        (BackfillCounts(total=3, running=1, done=2), False, BackfillStatus.RUNNING),
        (BackfillCounts(total=3, waiting=1, failed=2), False, BackfillStatus.RUNNING),
        (BackfillCounts(total=3, running=1, cancelled=2), True, BackfillStatus.RUNNING),
        (BackfillCounts(total=3, done=3), False, BackfillStatus.SUCCEEDED),
        (BackfillCounts(total=3, done=2, failed=1), False, BackfillStatus.FAILED),
        (BackfillCounts(total=3, done=1, failed=1, cancelled=1), True, BackfillStatus.CANCELLED),
        (BackfillCounts(total=3, done=2, cancelled=1), False, BackfillStatus.CANCELLED),
    ],
)
def test_status(counts, cancelled, status) -> None:
    assert status_of(counts, cancelled) is status


def test_counts_and_ends() -> None:
    counts = counts_of({PartitionState.SUCCEEDED: 2, PartitionState.WAITING: 3})
    assert (counts.total, counts.done, counts.waiting, counts.failed) == (5, 2, 3, 0)
    assert ended(RunStatus.FAILED) is PartitionState.FAILED
    assert ended(RunStatus.CANCELLED) is PartitionState.CANCELLED


def test_run_ids_and_keys_are_the_same_on_every_replica_and_differ_per_attempt() -> None:
    assert run_id(BACKFILL, "2026-11-01", 1) == run_id(BACKFILL, "2026-11-01", 1)
    assert run_id(BACKFILL, "2026-11-01", 1) != run_id(BACKFILL, "2026-11-01", 2)
    assert run_id(BACKFILL, "2026-11-01", 1) != run_id(BACKFILL, "2026-11-02", 1)
    assert idempotency_key(BACKFILL, "7", 2) == f"backfill:{BACKFILL}:7:2"


def test_the_range_parameter_wins_over_the_commands_params() -> None:
    cmd = StartBackfill(
        backfill_id=BACKFILL,
        domain="sales",
        recipe="daily",
        params={"day": "ignored", "region": "eu"},
        range=BackfillRange(param="day", start="2026-11-01", end="2026-11-02"),
    )
    assert run_params(cmd, "2026-11-02") == {"day": "2026-11-02", "region": "eu"}
