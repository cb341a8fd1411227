"""The Backfills view: every backfill with its progress, one backfill's partitions, actions.

Cancel and Retry-failed go through the registry's REST API with the signed-in user's token,
as the Run view's actions do; the page follows `backfill` changes of the live stream.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from sous_common.db import AnyConnection
from sous_common.trust import Principal, Scope
from sous_console.web.auth import Viewer, domain_filter, registry, require, token
from sous_console.web.pages import render, runtime

router = APIRouter()

LIMIT = 200
"""Most backfills the list shows (newest first)."""
COUNTS = ("total", "done", "failed", "running", "waiting", "cancelled")


async def _list(conn: AnyConnection, readable: list[str] | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM backfills WHERE $1::text[] IS NULL OR domain = ANY($1::text[])"
        f" ORDER BY created_at DESC, backfill_id LIMIT {LIMIT}",
        readable,
    )
    return [dict(r) for r in rows]


async def _one(conn: AnyConnection, backfill_id: uuid.UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM backfills WHERE backfill_id = $1", backfill_id)
    return dict(row) if row is not None else None


async def _partitions(conn: AnyConnection, backfill_id: uuid.UUID) -> list[dict[str, Any]]:
    # Keys are range values as text: dates sort as text, integers by their number.
    rows = await conn.fetch(
        "SELECT p.key, p.state, p.attempt, p.order_run_id, p.reason, r.status AS run_status"
        " FROM backfill_partitions p LEFT JOIN runs r ON r.order_run_id = p.order_run_id"
        " WHERE p.backfill_id = $1"
        " ORDER BY CASE WHEN p.key ~ '^-?[0-9]{1,18}$' THEN p.key::numeric END NULLS FIRST, p.key",
        backfill_id,
    )
    return [dict(r) for r in rows]


async def _found(
    request: Request, who: Principal, backfill_id: uuid.UUID, scope: Scope
) -> dict[str, Any]:
    async with runtime(request).pool.acquire() as conn:
        found = await _one(conn, backfill_id)
    if found is None:
        raise HTTPException(404, f"unknown backfill {backfill_id}")
    require(who, scope, found["domain"])
    return found


@router.get("/backfills", response_class=HTMLResponse)
async def backfills_view(request: Request, who: Viewer) -> HTMLResponse:
    """The Backfills view: target, range, status, progress and who started each; live."""
    async with runtime(request).pool.acquire() as conn:
        rows = await _list(conn, domain_filter(who))
    return render(request, "backfills.html", who, backfills=rows)


@router.get("/backfills/{backfill_id}", response_class=HTMLResponse)
async def backfill_view(request: Request, backfill_id: uuid.UUID, who: Viewer) -> HTMLResponse:
    """One backfill: its counts and partitions (key, state, attempt, linked run); live."""
    found = await _found(request, who, backfill_id, "read")
    async with runtime(request).pool.acquire() as conn:
        partitions = await _partitions(conn, backfill_id)
    return render(
        request,
        "backfill.html",
        who,
        b=found,
        partitions=partitions,
        may_run=who.may("run", found["domain"]),
    )


@router.get("/backfills/{backfill_id}/state")
async def backfill_state(request: Request, backfill_id: uuid.UUID, who: Viewer) -> dict[str, Any]:
    """The backfill's status, counts and partitions as JSON (what its page refreshes from)."""
    found = await _found(request, who, backfill_id, "read")
    async with runtime(request).pool.acquire() as conn:
        partitions = await _partitions(conn, backfill_id)
    return {
        "status": found["status"],
        "reason": found["reason"],
        "refused": found["refused"],
        "counts": {k: found[k] for k in COUNTS},
        "partitions": [
            {**p, "order_run_id": str(p["order_run_id"]) if p["order_run_id"] else None}
            for p in partitions
        ],
    }


@router.post("/backfills/{backfill_id}/cancel")
async def cancel_backfill(
    request: Request, backfill_id: uuid.UUID, who: Viewer
) -> RedirectResponse:
    """Cancel a backfill through the registry's REST API."""
    await _found(request, who, backfill_id, "run")
    await registry(request).cancel_backfill(token(request), backfill_id, f"cancelled by {who.name}")
    return RedirectResponse(f"/backfills/{backfill_id}", status_code=303)


@router.post("/backfills/{backfill_id}/retry-failed")
async def retry_failed(request: Request, backfill_id: uuid.UUID, who: Viewer) -> RedirectResponse:
    """Run the failed partitions again through the registry's REST API."""
    await _found(request, who, backfill_id, "run")
    await registry(request).retry_failed(token(request), backfill_id)
    return RedirectResponse(f"/backfills/{backfill_id}", status_code=303)
