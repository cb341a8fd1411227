"""Which version of a recipe a run uses: the nearest kitchen's along its chain, else the base.

Schedules follow the same pick: a variation's schedule is that of the version its kitchen runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from sous_contracts.specs import KitchenSpec, RecipeSpec, ScheduleSpec

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


@dataclass(frozen=True)
class Scheduled:
    """A scheduled variation of the version of a recipe its kitchen runs."""

    schedule_id: str
    """`domain/recipe/variation`, with `@kitchen` for a version applied into a kitchen."""
    variation: str
    kitchen: str
    schedule: ScheduleSpec


def scheduled(
    domain: str,
    recipe: str,
    versions: dict[str | None, RecipeSpec],
    kitchens: dict[str, KitchenSpec],
) -> list[Scheduled]:
    """Return the schedules of a recipe: those of the versions their variations' kitchens run.

    A variation's schedule fires in the variation's kitchen, so it counts only in the version
    that kitchen runs (`pick`). A sandbox's version thus schedules its own variations that
    name the sandbox (or a kitchen below it that runs it), and the variations it copied from
    the base, which name kitchens running other versions, never fire twice.
    """
    owners = {owner: owner for owner in versions}
    found = []
    for owner, spec in sorted(versions.items(), key=lambda item: item[0] or ""):
        for name, v in sorted(spec.variations.items()):
            if v.schedule is None or pick(owners, kitchens, v.kitchen) != owner:
                continue
            schedule_id = f"{domain}/{recipe}/{name}" + (f"@{owner}" if owner else "")
            found.append(Scheduled(schedule_id, name, v.kitchen, v.schedule))
    return found
