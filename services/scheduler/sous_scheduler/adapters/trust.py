"""What the scheduler trusts: its own key, and the principals the registry published."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sous_common.runtime import Runtime
from sous_common.trust import ANY_DOMAIN, Principal, Signer

CACHE_S = 5.0
"""How long a looked-up principal is reused; a revoked key stops verifying within it."""


class SchedulerTrust:
    """The scheduler's answers to `sous_common.trust.TrustStore`, from its own tables."""

    def __init__(
        self,
        rt: Runtime,
        own: Signer,
        catch_up: Callable[[datetime], Awaitable[bool]],
        clock: Callable[[], datetime],
    ) -> None:
        self.rt = rt
        self.own = Principal(own.principal, {ANY_DOMAIN: ["admin"]}, (own.public_key,))
        self._catch_up = catch_up
        self._clock = clock
        self._seen: dict[str, tuple[float, Principal]] = {}
        self._domains: dict[str, float] = {}

    async def refresh(self, since: datetime) -> bool:
        """Re-read the changelog unless a catch-up newer than `since` finished already.

        `since` is the message's own time, no later than now: a message dated in the future
        cannot make every refusal a changelog read.
        """
        if not await self._catch_up(min(since, self._clock())):
            return False
        self._seen.clear()
        self._domains.clear()
        return True

    async def principal(self, name: str) -> Principal | None:
        """Return the scheduler itself, or a principal of the registry's grants."""
        if name == self.own.name:
            return self.own
        now = time.monotonic()
        if (seen := self._seen.get(name)) is not None and now - seen[0] < CACHE_S:
            return seen[1]
        spec = await self.rt.pool.fetchval(
            "SELECT spec FROM registry WHERE kind = 'grant' AND name = $1 AND kitchen IS NULL"
            " AND NOT deleted",
            name,
        )
        if spec is None:
            return None
        found = Principal.from_grant(name, json.loads(spec))
        self._seen[name] = (now, found)
        return found

    async def domain_known(self, domain: str) -> bool:
        """True when the registry published the domain (a yes is reused for `CACHE_S`)."""
        now = time.monotonic()
        if (seen := self._domains.get(domain)) is not None and now - seen < CACHE_S:
            return True
        found: bool = await self.rt.pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM registry WHERE kind = 'domain' AND name = $1"
            " AND kitchen IS NULL AND NOT deleted)",
            domain,
        )
        if found:
            self._domains[domain] = now
        return found

    async def run_domain(self, order_run_id: Any) -> str | None:
        """Return the domain of a run (or a backfill) the scheduler holds."""
        domain: str | None = await self.rt.pool.fetchval(
            "SELECT domain FROM runs WHERE id = $1"
            " UNION ALL SELECT domain FROM backfills WHERE id = $1 LIMIT 1",
            order_run_id,
        )
        return domain
