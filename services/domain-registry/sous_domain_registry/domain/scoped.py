"""Versions applied into one kitchen: what a kitchen apply takes, ids, and diffs."""

from __future__ import annotations

from dataclasses import replace

from sous_contracts.registry import EntityKind
from sous_domain_registry.domain.catalog import Catalog
from sous_domain_registry.domain.entities import Change, Entity, Plan
from sous_domain_registry.domain.errors import SpecError
from sous_domain_registry.domain.triggers import downstream_domains


def refusals(bundle: Catalog, kitchen: str, base: Catalog) -> list[SpecError]:
    """Return why a bundle cannot be applied into a kitchen of the base catalog.

    Only recipes of known domains get versions of a kitchen; a bundle may still carry its
    domain.yaml and ingredients (a whole domain folder) as long as they equal the base ones.
    """
    errors = []
    if kitchen not in base.kitchens:
        known = ", ".join(sorted(base.kitchens)) or "none"
        errors.append(
            SpecError("(request)", "kitchen", f"unknown kitchen {kitchen!r} (kitchens: {known})")
        )
    why = f"only recipes can be applied into kitchen {kitchen!r}"
    for name in sorted(bundle.kitchens):
        errors.append(SpecError(bundle.file_of(f"kitchen:{name}", name), "", why))
    for name, spec in sorted(bundle.domains.items()):
        if base.domains.get(name) != spec:
            path = bundle.file_of(f"domain:{name}", f"{name}/domain.yaml")
            errors.append(SpecError(path, "", f"{why}; this domain.yaml differs from the base"))
    for (d, n, v), ingredient in sorted(bundle.ingredients.items()):
        if base.ingredients.get((d, n, v)) != ingredient:
            path = bundle.file_of(f"ingredient:{d}/{n}@{v}", f"{d}/ingredients/{n}.yaml")
            errors.append(SpecError(path, "", f"{why}; this ingredient differs from the base"))
    for domain in sorted({d for d, _ in bundle.recipes} - set(base.domains)):
        path = f"{domain}/domain.yaml"
        errors.append(SpecError(path, "", f"unknown domain {domain!r}: apply it first"))
    return errors


def recipes_of(bundle: Catalog) -> Catalog:
    """Return the bundle's recipes alone (its other documents equal the base)."""
    files = {k: v for k, v in bundle.files.items() if k.startswith(f"{EntityKind.RECIPE.value}:")}
    return Catalog(recipes=dict(bundle.recipes), files=files)


def rescope(e: Entity, kitchen: str | None) -> Entity:
    """Return the entity as a version of `kitchen` (`id@kitchen`), or of the base for None."""
    base = e.entity_id if e.kitchen is None else e.entity_id.removesuffix(f"@{e.kitchen}")
    return replace(e, entity_id=base if kitchen is None else f"{base}@{kitchen}", kitchen=kitchen)


def scoped_plan(old: dict[str, Entity], wanted: list[Entity], catalog: Catalog) -> Plan:
    """Diff the versions a kitchen has against those it should get (nothing is deleted)."""
    changes, upserts = [], []
    for e in sorted(wanted, key=lambda x: x.entity_id):
        before = old.get(e.entity_id)
        if before is None:
            changes.append(Change(e.entity_id, "create", None, e.version))
            upserts.append(e)
        elif before.version != e.version:
            changes.append(Change(e.entity_id, "update", before.version, e.version))
            upserts.append(e)
    changed = {(e.domain, e.name) for e in upserts if e.domain is not None}
    return Plan(changes, upserts, [], downstream_domains(catalog, changed))
