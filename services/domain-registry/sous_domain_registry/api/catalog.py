"""Routes of the catalog: apply specs, and query domains, recipes, variations and datasets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

from sous_common.trust import bundle_scopes, first_denial
from sous_contracts.registry import EntityKind
from sous_domain_registry import service
from sous_domain_registry.adapters import runs as run_rows
from sous_domain_registry.adapters import store
from sous_domain_registry.api.auth import Caller, Rt, require
from sous_domain_registry.api.errors import Refusal, errors
from sous_domain_registry.api.models import (
    ApplyRequest,
    ApplyResponse,
    Change,
    DomainPath,
    EntityOut,
    RecipePath,
    entity_out,
)
from sous_domain_registry.domain.entities import Entity
from sous_domain_registry.domain.errors import RefusedError

router = APIRouter(prefix="/v1", tags=["catalog"], responses=errors(401))


@router.post(
    "/apply",
    response_model=ApplyResponse,
    responses=errors(403, 413, 422),
    summary="Apply a folder of domain specs, all or nothing",
)
async def apply(body: ApplyRequest, rt: Rt, who: Caller) -> Any:
    """Validate the bundle against the whole catalog and apply it in one transaction.

    With `kitchen`, the bundle's recipes become versions of that kitchen instead of
    replacing the base ones (only recipes can be applied into a kitchen).
    """
    if (why := first_denial(who, bundle_scopes(body.files))) is not None:
        raise HTTPException(403, why)
    try:
        result = await service.apply(
            rt, body.files, principal=who.name, dry_run=body.dry_run, kitchen=body.kitchen
        )
    except RefusedError as exc:
        problems = [str(e) for e in exc.errors]
        return JSONResponse(Refusal(detail="refused", errors=problems).model_dump(), 422)
    return ApplyResponse(
        applied=result.applied,
        changes=[Change(**c) for c in result.changes],
        affected_domains=result.affected_domains,
    )


async def _domain_entity(rt: Rt, domain: str, who: Caller) -> Entity:
    require(who, "read", domain)
    async with rt.pool.acquire() as conn:
        e = await store.get(conn, f"domain:{domain}")
    if e is None:
        raise HTTPException(404, f"unknown domain {domain!r}")
    return e


@router.get("/domains", response_model=list[EntityOut], summary="Domains the caller may read")
async def list_domains(rt: Rt, who: Caller) -> list[EntityOut]:
    """Return every domain the caller may read."""
    async with rt.pool.acquire() as conn:
        found = await store.current(conn, EntityKind.DOMAIN)
    return [entity_out(e) for e in found.values() if who.may("read", e.name)]


@router.get(
    "/domains/{domain}", response_model=EntityOut, responses=errors(403, 404), summary="One domain"
)
async def get_domain(domain: DomainPath, rt: Rt, who: Caller) -> EntityOut:
    """Return one domain's spec and version."""
    return entity_out(await _domain_entity(rt, domain, who))


@router.get(
    "/domains/{domain}/recipes",
    response_model=list[EntityOut],
    responses=errors(403, 404),
    summary="Recipes",
)
async def list_recipes(domain: DomainPath, rt: Rt, who: Caller) -> list[EntityOut]:
    """Return a domain's compiled recipes."""
    await _domain_entity(rt, domain, who)
    async with rt.pool.acquire() as conn:
        found = await store.current(conn, EntityKind.RECIPE)
    return [entity_out(e) for e in found.values() if e.domain == domain]


@router.get(
    "/domains/{domain}/ingredients",
    response_model=list[EntityOut],
    responses=errors(403, 404),
    summary="Ingredients",
)
async def list_ingredients(domain: DomainPath, rt: Rt, who: Caller) -> list[EntityOut]:
    """Return the ingredients a domain publishes, every version."""
    await _domain_entity(rt, domain, who)
    async with rt.pool.acquire() as conn:
        found = await store.current(conn, EntityKind.INGREDIENT)
    return [entity_out(e) for e in found.values() if e.domain == domain]


async def _recipe(rt: Rt, domain: DomainPath, recipe: RecipePath, who: Caller) -> Entity:
    await _domain_entity(rt, domain, who)
    async with rt.pool.acquire() as conn:
        e = await store.get(conn, f"recipe:{domain}/{recipe}")
    if e is None:
        raise HTTPException(404, f"unknown recipe '{domain}/{recipe}'")
    return e


@router.get(
    "/domains/{domain}/recipes/{recipe}",
    response_model=EntityOut,
    responses=errors(403, 404),
    summary="A recipe",
)
async def get_recipe(domain: DomainPath, recipe: RecipePath, rt: Rt, who: Caller) -> EntityOut:
    """Return a compiled recipe and its version."""
    return entity_out(await _recipe(rt, domain, recipe, who))


@router.get(
    "/domains/{domain}/recipes/{recipe}/versions",
    responses=errors(403, 404),
    summary="Every version of a recipe",
)
async def recipe_versions(
    domain: DomainPath, recipe: RecipePath, rt: Rt, who: Caller
) -> list[dict[str, Any]]:
    """Return every version the recipe had, oldest first."""
    e = await _recipe(rt, domain, recipe, who)
    async with rt.pool.acquire() as conn:
        return await store.versions(conn, e.entity_id)


@router.get(
    "/domains/{domain}/recipes/{recipe}/variations",
    responses=errors(403, 404),
    summary="Variations of a recipe",
)
async def recipe_variations(
    domain: DomainPath, recipe: RecipePath, rt: Rt, who: Caller
) -> dict[str, Any]:
    """Return a recipe's variations by name."""
    variations: dict[str, Any] = (await _recipe(rt, domain, recipe, who)).spec["variations"]
    return variations


@router.get(
    "/domains/{domain}/datasets",
    responses=errors(403, 404),
    summary="Datasets and outputs a domain publishes",
)
async def datasets(domain: DomainPath, rt: Rt, who: Caller) -> dict[str, Any]:
    """Return the datasets a domain declares and the outputs of its latest runs."""
    e = await _domain_entity(rt, domain, who)
    async with rt.pool.acquire() as conn:
        latest = await run_rows.list_runs(
            conn, domains=[domain], recipe=None, kitchen=None, limit=50
        )
    outputs: dict[str, Any] = {}
    for r in latest:
        if r["status"] == "succeeded":
            outputs.setdefault(
                r["recipe"], {"order_run_id": str(r["order_run_id"]), **r["outputs"]}
            )
    return {"domain": domain, "publishes": e.spec.get("publishes", []), "outputs": outputs}
