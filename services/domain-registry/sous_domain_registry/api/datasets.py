"""Routes of the dataset view: who writes and reads each dataset, and its latest health."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from sous_contracts.common import TestSummary
from sous_contracts.registry import EntityKind
from sous_domain_registry.adapters import datasets as rows
from sous_domain_registry.adapters import monitors as monitor_rows
from sous_domain_registry.adapters import store
from sous_domain_registry.api.auth import Caller, Rt
from sous_domain_registry.api.errors import errors
from sous_domain_registry.api.models import NAME_PATTERN
from sous_domain_registry.domain.datasets import summary, view

router = APIRouter(prefix="/v1", tags=["datasets"], responses=errors(401))

Health = Literal["failed", "warning", "passed", "untested"]


class DatasetUse(BaseModel):
    """A recipe step that wrote or read the dataset, as its last run did."""

    domain: str
    recipe: str
    step: str
    kitchen: str
    last_run: str
    """The last order run in which the step wrote (or read) it."""
    status: str
    """How the step ended in that run."""
    tests: TestSummary
    """The step's test counts in that run."""
    at: str
    """When that run finished."""


class DatasetSummary(BaseModel):
    """A dataset in the list."""

    name: str
    last_written_by: str | None
    """The run that wrote it last, when one did."""
    last_written_at: str | None
    health: Health
    """Latest test health: the tests of the step that wrote it last."""
    domains: list[str]
    """Domains whose steps use it (of those the caller may read)."""


class MonitorHealth(BaseModel):
    """The latest check of a monitor watching the dataset."""

    domain: str
    monitor: str
    kitchen: str
    passed: bool
    """No error-severity test failed or errored."""
    summary: TestSummary
    """Counts by outcome of that check."""
    results: dict[str, str]
    """Outcome of each test by name."""
    last_check: str
    """The check's id (its results on the test-result topic carry it as `suite_id`)."""
    at: str


class DatasetView(DatasetSummary):
    """One dataset: its writers, its readers, its latest health and its monitors'."""

    writers: list[DatasetUse]
    readers: list[DatasetUse]
    monitors: list[MonitorHealth] = []
    """Latest check of each monitor watching it."""


KitchenQuery = Annotated[str | None, Query(pattern=NAME_PATTERN)]


async def _readable(rt: Rt, who: Caller) -> list[str]:
    async with rt.pool.acquire() as conn:
        known = [e.name for e in (await store.current(conn, EntityKind.DOMAIN)).values()]
    return who.readable(known)


@router.get("/datasets", summary="Datasets the caller's domains write or read")
async def list_datasets(rt: Rt, who: Caller, kitchen: KitchenQuery = None) -> list[DatasetSummary]:
    """Return every dataset a step of a readable domain wrote or read, by name."""
    domains = await _readable(rt, who)
    async with rt.pool.acquire() as conn:
        found = await rows.uses(conn, domains=domains, kitchen=kitchen)
    by_name: dict[str, list[dict[str, object]]] = {}
    for r in found:
        by_name.setdefault(str(r["dataset"]), []).append(r)
    return [
        DatasetSummary.model_validate(summary(view(n, rs))) for n, rs in sorted(by_name.items())
    ]


@router.get(
    "/datasets/{name:path}",
    responses=errors(404),
    summary="One dataset: writers, readers, last run that wrote it, latest test and monitor health",
)
async def get_dataset(name: str, rt: Rt, who: Caller, kitchen: KitchenQuery = None) -> DatasetView:
    """Return a dataset's view over the domains the caller may read (404 when none uses it)."""
    domains = await _readable(rt, who)
    async with rt.pool.acquire() as conn:
        found = await rows.uses(conn, domains=domains, name=name, kitchen=kitchen)
        watched = await monitor_rows.of_dataset(conn, domains=domains, name=name, kitchen=kitchen)
    if not found and not watched:
        raise HTTPException(
            404,
            f"unknown dataset {name!r} (no step or monitor of a domain you may read uses it)",
        )
    return DatasetView.model_validate({**view(name, found), "monitors": watched})
