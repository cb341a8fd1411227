"""Routes of process and event linkage: start, cancel and follow runs; completion events."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from sous_contracts.registry import EntityKind
from sous_contracts.runs import DomainRunCompleted
from sous_domain_registry import runs
from sous_domain_registry.adapters import runs as run_rows
from sous_domain_registry.adapters import store
from sous_domain_registry.api.auth import Caller, Rt, require
from sous_domain_registry.api.errors import errors
from sous_domain_registry.api.models import (
    NAME_PATTERN,
    CancelRun,
    Completion,
    EventAccepted,
    RunAccepted,
    StartRun,
)

router = APIRouter(prefix="/v1", tags=["runs"], responses=errors(401))

NameQuery = Annotated[str | None, Query(pattern=NAME_PATTERN)]


@router.post(
    "/runs",
    status_code=202,
    response_model=RunAccepted,
    responses=errors(403, 404, 413),
    summary="Start an order run",
)
async def start_run(body: StartRun, rt: Rt, who: Caller) -> RunAccepted:
    """Queue StartOrderRun on Kafka; the run id is returned at once."""
    require(who, "run", body.domain)
    try:
        run_id = await runs.start_run(
            rt,
            domain=body.domain,
            recipe=body.recipe,
            variation=body.variation,
            kitchen=body.kitchen,
            params=body.params,
            principal=who.name,
            idempotency_key=body.idempotency_key,
        )
    except runs.NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
    return RunAccepted(order_run_id=run_id)


@router.get(
    "/runs", responses=errors(403), summary="Latest runs of the domains the caller may read"
)
async def list_runs(
    rt: Rt,
    who: Caller,
    domain: NameQuery = None,
    recipe: NameQuery = None,
    kitchen: NameQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    """Return runs from the read model, newest first."""
    async with rt.pool.acquire() as conn:
        known = [e.name for e in (await store.current(conn, EntityKind.DOMAIN)).values()]
        domains = [domain] if domain is not None else known
        readable = who.readable(domains)
        if domain is not None and not readable:
            require(who, "read", domain)
        return await run_rows.list_runs(
            conn, domains=readable, recipe=recipe, kitchen=kitchen, limit=limit
        )


async def _run(rt: Rt, run_id: uuid.UUID) -> dict[str, Any]:
    found = await runs.find_run(rt, run_id)
    if found is None:
        raise HTTPException(404, f"unknown run {run_id}")
    return found


@router.get(
    "/runs/{run_id}",
    responses=errors(403, 404),
    summary="A run with its steps and test results",
)
async def get_run(run_id: uuid.UUID, rt: Rt, who: Caller) -> dict[str, Any]:
    """Return one run of the read model."""
    found = await _run(rt, run_id)
    require(who, "read", found["domain"])
    return found


@router.post(
    "/runs/{run_id}/cancel",
    status_code=202,
    response_model=RunAccepted,
    responses=errors(403, 404, 413),
    summary="Cancel a run",
)
async def cancel_run(run_id: uuid.UUID, body: CancelRun, rt: Rt, who: Caller) -> RunAccepted:
    """Queue CancelOrderRun on Kafka."""
    found = await _run(rt, run_id)
    require(who, "run", found["domain"])
    await runs.cancel_run(rt, run_id, reason=body.reason, principal=who.name)
    return RunAccepted(order_run_id=run_id)


@router.post(
    "/events/completion",
    status_code=202,
    response_model=EventAccepted,
    responses=errors(403, 404, 413),
    tags=["events"],
    summary="Publish a completion event of a domain run by another tool",
)
async def publish_completion(body: Completion, rt: Rt, who: Caller) -> EventAccepted:
    """Queue DomainRunCompleted (external) on Kafka; it triggers downstream recipes."""
    require(who, "publish-events", body.domain)
    event = DomainRunCompleted(
        domain=body.domain,
        recipe=body.recipe,
        variation=body.variation,
        kitchen=body.kitchen,
        status=body.status,
        order_run_id=body.order_run_id,
        params=body.params,
        outputs=body.outputs,
        tests=body.tests,
        external=True,
        producer=f"rest:{who.name}",
    )
    try:
        await runs.publish_completion(rt, event, principal=who.name)
    except runs.NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
    return EventAccepted(message_id=event.message_id)
