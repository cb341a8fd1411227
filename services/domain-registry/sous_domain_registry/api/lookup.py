"""What the run and backfill routes share: readable domains, found-and-allowed, 404 answers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import HTTPException

from sous_common.trust import Principal, Scope
from sous_contracts.registry import EntityKind
from sous_domain_registry.adapters import store
from sous_domain_registry.api.auth import require
from sous_domain_registry.runs import NotFoundError


async def readable_domains(conn: Any, who: Principal, domain: str | None) -> list[str]:
    """Return the domains a listing covers: `domain` when named, else every one `who` reads.

    A named domain the caller may not read answers 403 naming the missing scope.
    """
    known = [e.name for e in (await store.current(conn, EntityKind.DOMAIN)).values()]
    readable = who.readable([domain] if domain is not None else known)
    if domain is not None and not readable:
        require(who, "read", domain)
    return readable


def allowed(
    found: dict[str, Any] | None, who: Principal, scope: Scope, what: str
) -> dict[str, Any]:
    """Return a read-model row `who` holds `scope` on; 404 names `what` when there is none."""
    if found is None:
        raise HTTPException(404, f"unknown {what}")
    require(who, scope, found["domain"])
    return found


@contextmanager
def not_found_as_404() -> Iterator[None]:
    """Answer 404 with the reason when what a request names does not exist."""
    try:
        yield
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
