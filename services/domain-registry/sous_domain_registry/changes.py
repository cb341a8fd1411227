"""Writing a plan of entity changes: the store, the changelog records and the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sous_common.runtime import Runtime
from sous_contracts.registry import RegistryEntityChanged
from sous_domain_registry.adapters import store
from sous_domain_registry.domain.entities import Entity, Plan

PRODUCER = "domain-registry"


@dataclass(frozen=True)
class ApplyResult:
    """What an apply changed (or would change, on a dry run)."""

    applied: bool
    changes: list[dict[str, Any]]
    affected_domains: list[str]


def record(e: Entity, *, by: str | None, deleted: bool = False) -> RegistryEntityChanged:
    """Return the changelog record of an entity."""
    return RegistryEntityChanged(
        entity_id=e.entity_id,
        kind=e.kind,
        domain=e.domain,
        name=e.name,
        version=e.version,
        spec=e.spec,
        deleted=deleted,
        changed_by=by,
        kitchen=e.kitchen,
        producer=PRODUCER,
    )


async def commit(rt: Runtime, conn: Any, p: Plan, *, by: str) -> None:
    """Store a plan's upserts and deletions and emit their changelog records."""
    for e in p.upserts:
        await store.put(conn, e, by=by)
    for e in p.deletes:
        await store.delete(conn, e.entity_id, by=by)
    await rt.emit(
        conn,
        [record(e, by=by) for e in p.upserts] + [record(e, by=by, deleted=True) for e in p.deletes],
    )
