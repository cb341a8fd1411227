"""Admission: limits by variation and how free slots are handed out."""

from __future__ import annotations

import uuid

from sous_contracts.specs import RecipeSpec
from sous_scheduler.domain.admission import concurrency_of, to_begin

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


def test_free_slots_go_to_the_oldest_queued_runs_one_each() -> None:
    assert to_begin(3, 1, QUEUED) == QUEUED[:2]
    assert to_begin(3, 3, QUEUED) == []
    assert to_begin(3, 5, QUEUED) == []  # over the limit (a lowered limit): nobody starts
    assert to_begin(10, 0, QUEUED) == QUEUED
