"""Routes of development linkage: kitchens, their versions, merging and deleting them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import JSONResponse

from sous_contracts.registry import EntityKind
from sous_contracts.specs import DomainSpec, KitchenSpec
from sous_domain_registry import expiry, merging, runs, service
from sous_domain_registry.adapters import store
from sous_domain_registry.api.auth import Caller, Rt, require
from sous_domain_registry.api.errors import Refusal, errors
from sous_domain_registry.api.models import (
    NAME_PATTERN,
    Change,
    CreateKitchen,
    EntityOut,
    KitchenPath,
    KitchenVersion,
    MergeCheck,
    MergeResult,
    entity_out,
)
from sous_domain_registry.domain.errors import ConflictError, RefusedError
from sous_domain_registry.domain.kitchens import resolve
from sous_domain_registry.domain.validate import resolve_recipe

router = APIRouter(prefix="/v1", tags=["kitchens"], responses=errors(401))


@router.get("/kitchens", response_model=list[EntityOut], summary="Every kitchen")
async def list_kitchens(rt: Rt, who: Caller) -> list[EntityOut]:
    """Return every kitchen; any authenticated caller may list them."""
    async with rt.pool.acquire() as conn:
        return [entity_out(e) for e in (await store.current(conn, EntityKind.KITCHEN)).values()]


async def _kitchen(rt: Rt, name: str) -> KitchenSpec:
    async with rt.pool.acquire() as conn:
        e = await store.get(conn, f"kitchen:{name}")
    if e is None:
        raise HTTPException(404, f"unknown kitchen {name!r}")
    return KitchenSpec.model_validate(e.spec)


@router.get(
    "/kitchens/{kitchen}", response_model=EntityOut, responses=errors(404), summary="One kitchen"
)
async def get_kitchen(kitchen: KitchenPath, rt: Rt, who: Caller) -> EntityOut:
    """Return one kitchen."""
    async with rt.pool.acquire() as conn:
        e = await store.get(conn, f"kitchen:{kitchen}")
    if e is None:
        raise HTTPException(404, f"unknown kitchen {kitchen!r}")
    return entity_out(e)


@router.get(
    "/kitchens/{kitchen}/versions",
    response_model=list[KitchenVersion],
    responses=errors(404),
    summary="Recipe versions applied into a kitchen",
)
async def kitchen_versions(kitchen: KitchenPath, rt: Rt, who: Caller) -> list[KitchenVersion]:
    """Return the recipes applied into the kitchen with their versions (and the base ones).

    Only recipes of domains the caller may read.
    """
    async with rt.pool.acquire() as conn:
        if await store.get(conn, f"kitchen:{kitchen}") is None:
            raise HTTPException(404, f"unknown kitchen {kitchen!r}")
        found = await store.kitchen_versions(conn, kitchen)
    return [KitchenVersion(**v) for v in found if who.may("read", v["domain"])]


async def _start(rt: Rt, ref: str | None, kitchen: str, who: str) -> None:
    if ref is None:
        return
    domain, recipe = resolve_recipe(ref, "")
    await runs.start_run(
        rt, domain=domain, recipe=recipe, variation=None, kitchen=kitchen, params={}, principal=who
    )


@router.get(
    "/kitchens/{kitchen}/resolved",
    responses=errors(403, 404),
    summary="What a domain gets in a kitchen",
)
async def resolved_kitchen(
    kitchen: KitchenPath, domain: Annotated[str, Query(pattern=NAME_PATTERN)], rt: Rt, who: Caller
) -> dict[str, Any]:
    """Return the params and connections (references only) after every override."""
    require(who, "read", domain)
    async with rt.pool.acquire() as conn:
        found = await store.current(conn, EntityKind.KITCHEN)
        d = await store.get(conn, f"domain:{domain}")
    if f"kitchen:{kitchen}" not in found:
        raise HTTPException(404, f"unknown kitchen {kitchen!r}")
    if d is None:
        raise HTTPException(404, f"unknown domain {domain!r}")
    kitchens = {e.name: KitchenSpec.model_validate(e.spec) for e in found.values()}
    r = resolve(kitchens, kitchen, DomainSpec.model_validate(d.spec))
    connections = {n: c.model_dump(mode="json") for n, c in r.connections.items()}
    return {
        "kitchen": kitchen,
        "domain": domain,
        "chain": r.chain,
        "params": r.params,
        "connections": connections,
    }


@router.post(
    "/kitchens",
    status_code=201,
    response_model=EntityOut,
    responses=errors(403, 413, 422),
    summary="Create a sandbox kitchen from a parent",
)
async def create_kitchen(body: CreateKitchen, rt: Rt, who: Caller) -> Any:
    """Create the kitchen, then start its provisioning recipe (if any) in it."""
    require(who, "admin", None)
    spec = KitchenSpec(
        kitchen=body.name,
        parent=body.from_,
        description=body.description,
        params=body.params,
        connections=body.connections,
        ttl=body.ttl,
        provision=body.provision,
        teardown=body.teardown,
    )
    try:
        e = await service.put_kitchen(rt, spec, by=who.name)
    except RefusedError as exc:
        problems = [str(x) for x in exc.errors]
        return JSONResponse(Refusal(detail="refused", errors=problems).model_dump(), 422)
    await _start(rt, spec.provision, spec.kitchen, who.name)
    return entity_out(e)


@router.delete(
    "/kitchens/{kitchen}",
    status_code=204,
    responses=errors(403, 404),
    summary="Delete a kitchen",
)
async def delete_kitchen(kitchen: KitchenPath, rt: Rt, who: Caller) -> Response:
    """Start the teardown recipe (if any), then delete the kitchen."""
    require(who, "admin", None)
    spec = await _kitchen(rt, kitchen)
    if not await expiry.teardown_and_delete(rt, spec, by=who.name, action="kitchen.delete"):
        raise HTTPException(404, f"unknown kitchen {kitchen!r}")
    return Response(status_code=204)


@router.get(
    "/kitchens/{kitchen}/merge",
    response_model=MergeCheck,
    responses=errors(403, 404),
    summary="Whether a sandbox may merge now, and why not",
)
async def merge_check(kitchen: KitchenPath, rt: Rt, who: Caller) -> MergeCheck:
    """Answer whether `POST /v1/kitchens/{kitchen}/merge` would merge the kitchen now.

    The reasons come from the very check the merge makes (no parent, latest runs failed,
    a changed recipe without a passing run since, versions that would not validate); a
    merge refused with 409 names the same reasons, joined by "; ". Needs `read` on every
    domain (`*`): a kitchen spans domains, and the reasons name recipes of any of them.
    """
    require(who, "read", None)
    async with rt.pool.acquire() as conn:
        checked = await merging.merge_refusals(conn, kitchen)
    if checked is None:
        raise HTTPException(404, f"unknown kitchen {kitchen!r}")
    parent, reasons = checked
    return MergeCheck(kitchen=kitchen, parent=parent, allowed=not reasons, reasons=reasons)


@router.post(
    "/kitchens/{kitchen}/merge",
    response_model=MergeResult,
    responses=errors(403, 404, 409),
    summary="Merge a sandbox",
)
async def merge_kitchen(kitchen: KitchenPath, rt: Rt, who: Caller) -> MergeResult:
    """Promote a sandbox's versions to its parent, then delete it.

    Refused (409) while `GET /v1/kitchens/{kitchen}/merge` gives reasons (the detail joins
    them): a root kitchen, latest runs that failed error tests, a recipe it changed without
    a succeeded run in it since, or versions that would no longer validate.
    """
    require(who, "admin", None)
    spec = await _kitchen(rt, kitchen)
    try:
        promoted = await service.merge_kitchen(rt, kitchen, by=who.name)
    except ConflictError as exc:
        raise HTTPException(409, str(exc)) from exc
    except RefusedError as exc:
        raise HTTPException(409, "; ".join(str(x) for x in exc.errors)) from exc
    if promoted is None:
        raise HTTPException(404, f"unknown kitchen {kitchen!r}")
    return MergeResult(
        kitchen=kitchen,
        parent=spec.parent,
        merged=True,
        promoted=[Change(**c) for c in promoted],
    )
