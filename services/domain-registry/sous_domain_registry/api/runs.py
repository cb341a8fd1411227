"""Routes of process and event linkage: start, cancel and follow runs; completion events."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from sous_contracts.runs import DomainRunCompleted
from sous_domain_registry import runs
from sous_domain_registry.adapters import runs as run_rows
from sous_domain_registry.api.auth import Caller, Rt, require
from sous_domain_registry.api.errors import errors
from sous_domain_registry.api.lookup import allowed, not_found_as_404, readable_domains
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
    with not_found_as_404():
        run_id = await runs.start_run(
            rt, **body.target(), principal=who.name, idempotency_key=body.idempotency_key
        )
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
        readable = await readable_domains(conn, who, domain)
        return await run_rows.list_runs(
            conn, domains=readable, recipe=recipe, kitchen=kitchen, limit=limit
        )


@router.get(
    "/runs/{run_id}",
    responses=errors(403, 404),
    summary="A run with its steps and test results",
)
async def get_run(run_id: uuid.UUID, rt: Rt, who: Caller) -> dict[str, Any]:
    """Return one run of the read model."""
    return allowed(await runs.find_run(rt, run_id), who, "read", f"run {run_id}")


@router.post(
    "/runs/{run_id}/cancel",
    status_code=202,
    response_model=RunAccepted,
    responses=errors(403, 404, 413),
    summary="Cancel a run",
)
async def cancel_run(run_id: uuid.UUID, body: CancelRun, rt: Rt, who: Caller) -> RunAccepted:
    """Queue CancelOrderRun on Kafka."""
    allowed(await runs.find_run(rt, run_id), who, "run", f"run {run_id}")
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
    with not_found_as_404():
        await runs.publish_completion(rt, event, principal=who.name)
    return EventAccepted(message_id=event.message_id)
