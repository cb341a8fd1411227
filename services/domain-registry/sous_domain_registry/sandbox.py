"""Use cases of versions applied into a kitchen: apply, promote on merge, tombstone on delete."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sous_common.runtime import Runtime
from sous_contracts.registry import EntityKind
from sous_domain_registry.adapters import store
from sous_domain_registry.changes import ApplyResult, commit, record
from sous_domain_registry.domain.bundle import parse
from sous_domain_registry.domain.catalog import Catalog
from sous_domain_registry.domain.entities import Entity, catalog_of, entities
from sous_domain_registry.domain.errors import RefusedError, SpecError
from sous_domain_registry.domain.scoped import recipes_of, refusals, rescope, scoped_plan
from sous_domain_registry.domain.validate import validate


async def apply_into(
    rt: Runtime,
    conn: Any,
    files: dict[str, str],
    kitchen: str,
    *,
    principal: str,
    dry_run: bool = False,
) -> ApplyResult:
    """Validate recipes against the base catalog and store them as versions of one kitchen.

    Raises:
        RefusedError: with every error, when the kitchen is unknown, the bundle holds other
            documents than recipes, or the recipes do not validate.
    """
    bundle, errors = parse(files, with_domains=False)
    if not files:
        errors.append(SpecError("(bundle)", "", "no spec files"))
    await store.lock_catalog(conn)
    old = await store.current(conn)
    base = catalog_of([e for e in old.values() if e.kind != EntityKind.GRANT])
    errors += refusals(bundle, kitchen, base)
    if errors:
        raise RefusedError(errors)
    bundle = recipes_of(bundle)
    merged = base.merged(bundle)
    if errors := validate(merged):
        raise RefusedError(errors)
    new = entities(merged)
    wanted = [rescope(new[f"recipe:{d}/{n}"], kitchen) for d, n in bundle.recipes]
    p = scoped_plan(await store.scoped(conn, kitchen), wanted, merged)
    changes = [asdict(c) for c in p.changes]
    if not dry_run and p.changes:
        await commit(rt, conn, p, by=principal)
        detail = {"changes": changes, "affected_domains": p.affected_domains}
        await store.audit(conn, principal, "apply.kitchen", kitchen, detail)
    return ApplyResult(not dry_run, changes, p.affected_domains)


def _promoted(base: dict[str, Entity], mine: list[Entity]) -> Catalog:
    """Return the base catalog with a kitchen's versions in it: what a merge would publish."""
    return catalog_of([e for e in base.values() if e.kind != EntityKind.GRANT]).merged(
        catalog_of(mine)
    )


async def promotion_errors(conn: Any, kitchen: str) -> list[SpecError]:
    """Return why a kitchen's versions would not validate once promoted (empty: they would)."""
    mine = list((await store.scoped(conn, kitchen)).values())
    if not mine:
        return []
    return validate(_promoted(await store.current(conn), mine))


async def promote(
    rt: Runtime, conn: Any, kitchen: str, parent: str | None, *, by: str
) -> list[dict[str, Any]]:
    """Make a kitchen's versions versions of `parent` (None: the base); return the changes.

    Raises:
        RefusedError: when the promoted recipes no longer validate against the base catalog.
    """
    mine = list((await store.scoped(conn, kitchen)).values())
    if not mine:
        return []
    base = await store.current(conn)
    merged = _promoted(base, mine)
    if errors := validate(merged):
        raise RefusedError(errors)
    old = base if parent is None else await store.scoped(conn, parent)
    p = scoped_plan(old, [rescope(e, parent) for e in mine], merged)
    await commit(rt, conn, p, by=by)
    return [asdict(c) for c in p.changes]


async def tombstone(rt: Runtime, conn: Any, kitchen: str, *, by: str) -> list[Entity]:
    """Delete every version applied into a kitchen and emit their `deleted` records."""
    gone = list((await store.scoped(conn, kitchen)).values())
    for e in gone:
        await store.delete(conn, e.entity_id, by=by)
    if gone:
        await rt.emit(conn, [record(e, by=by, deleted=True) for e in gone])
    return gone
