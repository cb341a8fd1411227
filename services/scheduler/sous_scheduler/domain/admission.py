"""Admission: how many runs of a variation may run, and which queued runs take free slots."""

from __future__ import annotations

import uuid

from sous_contracts.specs import ConcurrencySpec, RecipeSpec


def concurrency_of(recipe: RecipeSpec, variation: str) -> ConcurrencySpec:
    """Return the limit and policy of a variation: its own, else the recipe's."""
    policy = recipe.variations.get(variation)
    return (policy.concurrency if policy else None) or recipe.concurrency


def lock_key(domain: str, recipe: str, variation: str) -> str:
    """Return the name of the lock that serialises admission of one variation."""
    return f"{domain}/{recipe}/{variation}"


def to_begin(limit: int, running: int, queued: list[uuid.UUID]) -> list[uuid.UUID]:
    """Return the queued runs (oldest first) that the free slots go to, one slot each."""
    return queued[: max(0, limit - running)]
