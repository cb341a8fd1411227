"""Entities as the changelog carries them, built from a catalog, and the diff of two sets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sous_contracts.registry import EntityKind
from sous_contracts.specs import DomainSpec, IngredientSpec, KitchenSpec, RecipeSpec
from sous_domain_registry.domain.catalog import Catalog, ingredient_file
from sous_domain_registry.domain.compile import compile_recipe, content_hash
from sous_domain_registry.domain.errors import SpecError
from sous_domain_registry.domain.triggers import downstream_domains


@dataclass(frozen=True)
class Entity:
    """One registry entity at one version."""

    entity_id: str
    kind: EntityKind
    domain: str | None
    name: str
    version: str
    spec: dict[str, Any]
    source: dict[str, Any] | None = field(default=None, compare=False)
    """A recipe as written (SQL inlined, ingredients not expanded); not on the changelog."""
    kitchen: str | None = None
    """Kitchen this version applies in (its id ends in `@kitchen`); None for the base."""


def _entity(
    kind: EntityKind,
    domain: str | None,
    name: str,
    spec: dict[str, Any],
    source: dict[str, Any] | None = None,
) -> Entity:
    path = f"{domain}/{name}" if domain is not None and kind != EntityKind.DOMAIN else name
    return Entity(f"{kind.value}:{path}", kind, domain, name, content_hash(spec), spec, source)


def _dump(spec: DomainSpec | KitchenSpec | IngredientSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", by_alias=True)


def entities(cat: Catalog) -> dict[str, Entity]:
    """Return every entity of a (valid) catalog, recipes compiled, by entity id."""
    out = [_entity(EntityKind.DOMAIN, n, n, _dump(d)) for n, d in cat.domains.items()]
    out += [_entity(EntityKind.KITCHEN, None, n, _dump(k)) for n, k in cat.kitchens.items()]
    out += [
        _entity(
            EntityKind.RECIPE,
            d,
            n,
            compile_recipe(cat, d, r),
            r.model_dump(mode="json", by_alias=True),
        )
        for (d, n), r in cat.recipes.items()
    ]
    out += [
        _entity(EntityKind.INGREDIENT, d, f"{n}@{v}", _dump(i))
        for (d, n, v), i in cat.ingredients.items()
    ]
    return {e.entity_id: e for e in out}


def catalog_of(stored: list[Entity]) -> Catalog:
    """Rebuild a catalog from stored entities (recipes as written when known, else compiled)."""
    cat = Catalog()
    for e in stored:
        if e.kind == EntityKind.DOMAIN:
            cat.domains[e.name] = DomainSpec.model_validate(e.spec)
        elif e.kind == EntityKind.KITCHEN:
            cat.kitchens[e.name] = KitchenSpec.model_validate(e.spec)
        elif e.kind == EntityKind.RECIPE and e.domain is not None:
            cat.recipes[(e.domain, e.name)] = RecipeSpec.model_validate(e.source or e.spec)
        elif e.kind == EntityKind.INGREDIENT and e.domain is not None:
            spec = IngredientSpec.model_validate(e.spec)
            cat.ingredients[(e.domain, spec.ingredient, spec.version)] = spec
    return cat


Action = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class Change:
    """What an apply does to one entity."""

    entity_id: str
    action: Action
    old_version: str | None
    new_version: str | None


@dataclass(frozen=True)
class Plan:
    """Every change of an apply, the entities to write, and the domains it reaches."""

    changes: list[Change]
    upserts: list[Entity]
    deletes: list[Entity]
    affected_domains: list[str]


def plan(
    old: dict[str, Entity],
    new_catalog: Catalog,
    touched_domains: set[str],
    new: dict[str, Entity] | None = None,
) -> Plan:
    """Diff the stored entities against the merged catalog's.

    Deletions only happen inside domains the bundle carries (replaced whole).
    """
    new = new if new is not None else entities(new_catalog)
    changes, upserts, deletes = [], [], []
    for eid, e in sorted(new.items()):
        before = old.get(eid)
        if before is None:
            changes.append(Change(eid, "create", None, e.version))
            upserts.append(e)
        elif before.version != e.version:
            changes.append(Change(eid, "update", before.version, e.version))
            upserts.append(e)
    for eid, e in sorted(old.items()):
        if eid not in new and e.domain in touched_domains:
            changes.append(Change(eid, "delete", e.version, None))
            deletes.append(e)
    changed = {
        (e.domain, e.name)
        for e in [*upserts, *deletes]
        if e.kind == EntityKind.RECIPE and e.domain is not None
    }
    return Plan(changes, upserts, deletes, downstream_domains(new_catalog, changed))


def republished_ingredients(
    old: dict[str, Entity], new: dict[str, Entity], files: dict[str, str]
) -> list[SpecError]:
    """Return an error for each published ingredient version whose content would change."""
    errors = []
    for eid, e in sorted(new.items()):
        before = old.get(eid)
        if e.kind == EntityKind.INGREDIENT and before is not None and before.version != e.version:
            domain, name = e.domain or "", e.name.partition("@")[0]
            version = int(e.name.partition("@")[2])
            errors.append(
                SpecError(
                    files.get(eid, ingredient_file(domain, name, version)),
                    "version",
                    f"ingredient {domain}/{e.name} is published and cannot change; "
                    "give the change a new version",
                )
            )
    return errors
