"""Routes of run lineage and impact: why a run started, what it started, what a test touched."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from sous_domain_registry import lineage
from sous_domain_registry.api.auth import Caller, Rt
from sous_domain_registry.api.errors import errors
from sous_domain_registry.api.lookup import not_found_as_404

router = APIRouter(prefix="/v1", tags=["lineage"], responses=errors(401, 403, 404))


async def _answer(pending: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    try:
        with not_found_as_404():
            return await pending
    except lineage.HiddenError as exc:
        raise HTTPException(403, str(exc)) from exc


@router.get("/runs/{run_id}/lineage", summary="The runs upstream and downstream of a run")
async def run_lineage(
    run_id: uuid.UUID,
    rt: Rt,
    who: Caller,
    direction: lineage.Direction = "both",
    depth: Annotated[int, Query(ge=1, le=lineage.MAX_DEPTH)] = lineage.MAX_DEPTH,
) -> dict[str, Any]:
    """Return a graph: nodes (runs with status and test counts) and edges (with the trigger).

    Runs of domains the caller may not read are left out and counted in `elided`.
    """
    return await _answer(lineage.lineage(rt, who, run_id, direction, depth))


@router.get("/impact/runs/{run_id}", summary="Every run downstream of a run")
async def run_impact(run_id: uuid.UUID, rt: Rt, who: Caller) -> dict[str, Any]:
    """Return the downstream graph, a flat list of the runs, their owner domains, datasets."""
    return await _answer(lineage.impact_of_run(rt, who, run_id))


@router.get("/impact/test-results/{result_id}", summary="Every run downstream of a test result")
async def test_result_impact(result_id: uuid.UUID, rt: Rt, who: Caller) -> dict[str, Any]:
    """Return the impact of the run a (failed or warned) test result was reported in."""
    return await _answer(lineage.impact_of_test(rt, who, result_id))
