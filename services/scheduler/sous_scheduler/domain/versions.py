"""Which version of a recipe a run uses: the nearest kitchen's along its chain, else the base."""

from __future__ import annotations

from typing import TypeVar

from sous_contracts.specs import KitchenSpec, RecipeSpec

T = TypeVar("T")


def run_kitchen(kitchen: str | None, variation: str | None, base: RecipeSpec | None) -> str | None:
    """Return the kitchen a run will use: the one named, else its variation's (as planned)."""
    if kitchen is not None:
        return kitchen
    if base is None:
        return None
    if variation is not None:
        v = base.variations.get(variation)
        return v.kitchen if v is not None else None
    if len(base.variations) == 1:
        return next(iter(base.variations.values())).kitchen
    return None


def pick(
    versions: dict[str | None, T], kitchens: dict[str, KitchenSpec], kitchen: str | None
) -> T | None:
    """Return the version of the first kitchen from `kitchen` up to its root that has one.

    `versions` maps a kitchen to its version of the recipe, None to the base version, which
    is the answer when no kitchen on the chain has one.
    """
    seen: set[str] = set()
    current = kitchen
    while current is not None and current not in seen:
        if current in versions:
            return versions[current]
        seen.add(current)
        spec = kitchens.get(current)
        current = spec.parent if spec is not None else None
    return versions.get(None)
