"""Routes of backfills: start one run per partition of a range, follow, cancel, retry."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from sous_contracts.backfills import CancelBackfill, RangeError, RetryBackfill
from sous_domain_registry import backfills, runs
from sous_domain_registry.adapters import backfills as backfill_rows
from sous_domain_registry.api.auth import Caller, Rt, require
from sous_domain_registry.api.errors import errors
from sous_domain_registry.api.lookup import allowed, not_found_as_404, readable_domains
from sous_domain_registry.api.models import (
    NAME_PATTERN,
    BackfillAccepted,
    CancelRun,
    StartBackfillBody,
)

router = APIRouter(prefix="/v1", tags=["backfills"], responses=errors(401))


@router.post(
    "/backfills",
    status_code=202,
    response_model=BackfillAccepted,
    responses=errors(400, 403, 404, 413),
    summary="Start a backfill: one run per partition of a range",
)
async def start_backfill(body: StartBackfillBody, rt: Rt, who: Caller) -> BackfillAccepted:
    """Queue StartBackfill on Kafka; the backfill id and its partition count are returned."""
    require(who, "run", body.domain)
    try:
        with not_found_as_404():
            backfill_id, count = await backfills.start_backfill(
                rt,
                **body.target(),
                range_=body.range,
                concurrency=body.concurrency,
                downstream=body.downstream,
                principal=who.name,
            )
    except RangeError as exc:
        raise HTTPException(400, str(exc)) from exc
    return BackfillAccepted(backfill_id=backfill_id, partitions=count)


@router.get(
    "/backfills", responses=errors(403), summary="Latest backfills of the domains the caller reads"
)
async def list_backfills(
    rt: Rt,
    who: Caller,
    domain: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    """Return backfills from the read model (counts, no partitions), newest first."""
    async with rt.pool.acquire() as conn:
        readable = await readable_domains(conn, who, domain)
        return await backfill_rows.list_backfills(conn, readable, limit)


@router.get(
    "/backfills/{backfill_id}",
    responses=errors(403, 404),
    summary="A backfill with its counts and the partitions that started",
)
async def get_backfill(backfill_id: uuid.UUID, rt: Rt, who: Caller) -> dict[str, Any]:
    """Return one backfill of the read model; waiting partitions are counted, not listed."""
    found = await backfills.find_backfill(rt, backfill_id)
    return allowed(found, who, "read", f"backfill {backfill_id}")


@router.post(
    "/backfills/{backfill_id}/cancel",
    status_code=202,
    response_model=BackfillAccepted,
    responses=errors(403, 404, 413),
    summary="Cancel a backfill: waiting partitions are dropped, running runs cancelled",
)
async def cancel_backfill(
    backfill_id: uuid.UUID, body: CancelRun, rt: Rt, who: Caller
) -> BackfillAccepted:
    """Queue CancelBackfill on Kafka."""
    found = allowed(
        await backfills.find_backfill(rt, backfill_id), who, "run", f"backfill {backfill_id}"
    )
    command = CancelBackfill(
        backfill_id=backfill_id, reason=body.reason, principal=who.name, producer=runs.PRODUCER
    )
    await backfills.command_backfill(rt, command, principal=who.name)
    return BackfillAccepted(backfill_id=backfill_id, partitions=found["counts"].get("total", 0))


@router.post(
    "/backfills/{backfill_id}/retry-failed",
    status_code=202,
    response_model=BackfillAccepted,
    responses=errors(403, 404),
    summary="Run the failed partitions of a backfill again",
)
async def retry_failed(backfill_id: uuid.UUID, rt: Rt, who: Caller) -> BackfillAccepted:
    """Queue RetryBackfill on Kafka; the answer counts the partitions that failed so far."""
    found = allowed(
        await backfills.find_backfill(rt, backfill_id), who, "run", f"backfill {backfill_id}"
    )
    command = RetryBackfill(backfill_id=backfill_id, principal=who.name, producer=runs.PRODUCER)
    await backfills.command_backfill(rt, command, principal=who.name)
    return BackfillAccepted(backfill_id=backfill_id, partitions=found["counts"].get("failed", 0))
