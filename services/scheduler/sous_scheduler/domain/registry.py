"""What the scheduler can take from the registry changelog."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from sous_common.decoding import explain
from sous_contracts.registry import EntityKind, RegistryEntityChanged
from sous_contracts.specs import DomainSpec, KitchenSpec, RecipeSpec

_SPECS: dict[EntityKind, type[BaseModel]] = {
    EntityKind.RECIPE: RecipeSpec,
    EntityKind.DOMAIN: DomainSpec,
    EntityKind.KITCHEN: KitchenSpec,
}


def spec_problem(change: RegistryEntityChanged) -> str | None:
    """Why the change's spec cannot be read as its kind's spec; None when it can.

    The registry validates specs when they are applied. A record written by anything else,
    or by a newer registry with fields this version does not know, would otherwise be kept
    and fail every command that names it.
    """
    model = _SPECS.get(change.kind)
    if model is None or change.deleted:
        return None
    try:
        model.model_validate(change.spec)
    except ValidationError as exc:
        return f"{change.entity_id[:200]}: {explain(exc)}"
    return None
