"""What the registry trusts: the grants it holds (its own among them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sous_common.runtime import Runtime
from sous_common.trust import Principal
from sous_domain_registry.adapters import store


class RegistryTrust:
    """The registry's answers to `sous_common.trust.TrustStore`, from its own tables."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def principal(self, name: str) -> Principal | None:
        """Return a principal with its scopes and published keys."""
        async with self.rt.pool.acquire() as conn:
            return await store.grant_of(conn, name)

    async def domain_known(self, domain: str) -> bool:
        """True when the catalog holds the domain."""
        found: bool = await self.rt.pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM entities WHERE entity_id = $1 AND NOT deleted)",
            f"domain:{domain}",
        )
        return found

    async def run_domain(self, order_run_id: Any) -> str | None:
        """Return the domain of a run the read model holds."""
        domain: str | None = await self.rt.pool.fetchval(
            "SELECT domain FROM runs WHERE order_run_id = $1", order_run_id
        )
        return domain

    async def refresh(self, since: datetime) -> bool:
        """Nothing to catch up with: the registry's own tables are where grants are made."""
        return False
