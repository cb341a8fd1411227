"""Admission: limits by variation and how free slots are handed out."""

from __future__ import annotations

import uuid

import pytest

from sous_contracts.specs import ConcurrencySpec, RecipeSpec
from sous_scheduler.domain.admission import (
    Admission,
    Occupancy,
    admit,
    admit_counted,
    concurrency_of,
    heads,
)

RECIPE = RecipeSpec.model_validate(
    {
        "recipe": "r",
        "steps": {"s": {"run": {"kind": "noop"}}},
        "concurrency": {"limit": 3, "policy": "queue"},
        "variations": {
            "prod": {"kitchen": "prod", "concurrency": {"limit": 1, "policy": "cancel-new"}},
            "dev": {"kitchen": "dev"},
        },
    }
)
QUEUED = [uuid.UUID(int=i) for i in range(1, 6)]


def test_a_variation_limit_wins_over_the_recipe_one() -> None:
    assert (concurrency_of(RECIPE, "prod").limit, concurrency_of(RECIPE, "prod").policy) == (
        1,
        "cancel-new",
    )
    assert concurrency_of(RECIPE, "dev").limit == 3
    assert concurrency_of(RECIPE, "unknown").limit == 3


def _limit(limit: int, policy: str = "queue") -> ConcurrencySpec:
    return ConcurrencySpec.model_validate({"limit": limit, "policy": policy})


RUNNING = [uuid.UUID(int=i) for i in range(101, 111)]
NEW = uuid.UUID(int=999)


def test_free_slots_go_to_the_oldest_queued_runs_one_each() -> None:
    assert admit(_limit(3), RUNNING[:1], QUEUED) == Admission(begin=tuple(QUEUED[:2]))
    assert admit(_limit(3), RUNNING[:3], QUEUED) == Admission()
    assert admit(_limit(3), RUNNING[:5], QUEUED) == Admission()  # a lowered limit: none starts
    assert admit(_limit(10), [], QUEUED) == Admission(begin=tuple(QUEUED))
    assert admit(_limit(1), [], []) == Admission()


@pytest.mark.parametrize("policy", ["queue", "cancel-new", "cancel-running"])
@pytest.mark.parametrize("limit", [1, 2, 10])
def test_a_new_run_begins_while_a_slot_is_free_whatever_the_policy(policy: str, limit: int) -> None:
    running = RUNNING[: limit - 1]
    assert admit(_limit(limit, policy), running, [NEW], NEW) == Admission(begin=(NEW,))


@pytest.mark.parametrize("limit", [1, 2, 10])
def test_queue_puts_the_new_run_behind_the_queued_ones(limit: int) -> None:
    full = RUNNING[:limit]
    assert admit(_limit(limit), full, [NEW], NEW) == Admission(queue_at=1)
    assert admit(_limit(limit), full, [*QUEUED, NEW], NEW) == Admission(queue_at=6)
    # The new run may be passed in the queue or not: the answer is the same.
    assert admit(_limit(limit), full, QUEUED, NEW) == Admission(queue_at=6)


@pytest.mark.parametrize("limit", [1, 2, 10])
def test_cancel_new_refuses_the_new_run_with_the_limit_and_variation(limit: int) -> None:
    got = admit(_limit(limit, "cancel-new"), RUNNING[:limit], [], NEW, label="a/r variation prod")
    assert got == Admission(
        cancel=(NEW,), reason=f"concurrency limit {limit} reached for a/r variation prod"
    )


@pytest.mark.parametrize("limit", [1, 2, 10])
def test_cancel_running_cancels_the_oldest_running_run_for_the_new_one(limit: int) -> None:
    got = admit(_limit(limit, "cancel-running"), RUNNING[:limit], [NEW], NEW)
    assert got == Admission(
        begin=(NEW,), cancel=(RUNNING[0],), reason=f"cancelled: newer run {NEW}"
    )


def test_cancel_running_over_a_lowered_limit_cancels_down_to_room_for_one() -> None:
    got = admit(_limit(2, "cancel-running"), RUNNING[:5], [], NEW)
    assert got.begin == (NEW,)
    assert got.cancel == tuple(RUNNING[:4])  # 1 left running + the new one = the limit


def test_a_raised_limit_hands_free_slots_to_runs_queued_earlier_first() -> None:
    assert admit(_limit(3), RUNNING[:1], QUEUED[:1], NEW) == Admission(begin=(QUEUED[0], NEW))
    assert admit(_limit(3), RUNNING[:1], QUEUED[:3], NEW) == Admission(
        begin=tuple(QUEUED[:2]), queue_at=2
    )
    assert admit(_limit(3, "cancel-new"), RUNNING[:1], QUEUED[:2], NEW, label="v") == Admission(
        begin=tuple(QUEUED[:2]), cancel=(NEW,), reason="concurrency limit 3 reached for v"
    )


def test_the_limit_never_runs_over_and_no_queued_run_is_passed_over() -> None:
    """Every policy, limits 1..4, up to 5 running and queued: at most the limit runs after."""
    for policy in ("queue", "cancel-new", "cancel-running"):
        for limit in range(1, 5):
            for r in range(6):
                for q in range(6):
                    running, queued = RUNNING[:r], QUEUED[:q]
                    for new in (None, NEW):
                        got = admit(_limit(limit, policy), running, queued, new)
                        after = r - len(got.cancel) + len(got.begin)
                        if new in got.cancel:
                            after += 1  # the new one is cancelled but was never running
                        assert after <= max(limit, r), (policy, limit, r, q, new, got)
                        if r < limit:
                            assert after == min(limit, r + q + (new is not None)), got
                        begun_queued = [b for b in got.begin if b != new]
                        assert begun_queued == list(queued[: len(begun_queued)]), got


QUEUED_MORE = [uuid.UUID(int=i) for i in range(201, 208)]


@pytest.mark.parametrize("policy", ["queue", "cancel-new", "cancel-running"])
def test_counts_and_the_oldest_heads_decide_as_the_whole_lists_do(policy: str) -> None:
    for limit in range(1, 5):
        spec = _limit(limit, policy)
        for n_running in range(7):
            for n_queued in range(7):
                for new in (None, NEW):
                    running, queued = RUNNING[:n_running], QUEUED_MORE[:n_queued]
                    want = admit(spec, running, [*queued, *([new] if new else [])], new)
                    k_running, k_queued = heads(spec, n_running, n_queued, new)
                    seen = Occupancy(
                        n_running, n_queued, tuple(running[:k_running]), tuple(queued[:k_queued])
                    )
                    assert admit_counted(spec, seen, new) == want, (limit, n_running, n_queued)
