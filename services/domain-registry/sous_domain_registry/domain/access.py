"""Who may do what: bearer tokens hashed, scopes per domain (read, run, publish-events, admin)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

Scope = Literal["read", "run", "publish-events", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "run", "publish-events", "admin")
ANY_DOMAIN = "*"


def hash_token(token: str) -> str:
    """Return the stored form of a bearer token (`sha256:<hex>`); tokens are never stored."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """An authenticated caller and its scopes by domain (`*` for every domain)."""

    name: str
    scopes: dict[str, list[str]] = field(default_factory=dict)

    def may(self, scope: Scope, domain: str | None) -> bool:
        """True when the principal holds `scope` (or `admin`) on `domain` or on `*`."""
        for key in (ANY_DOMAIN, domain):
            held = self.scopes.get(key or ANY_DOMAIN, [])
            if scope in held or "admin" in held:
                return True
        return False

    def readable(self, domains: list[str]) -> list[str]:
        """Return the domains the principal may read."""
        return [d for d in domains if self.may("read", d)]


def denial(principal: Principal, scope: Scope, domain: str | None) -> str | None:
    """Return the 403 message when `principal` lacks `scope` on `domain`, else None."""
    if principal.may(scope, domain):
        return None
    where = f"domain '{domain}'" if domain else "every domain ('*')"
    return f"principal '{principal.name}' lacks scope '{scope}' on {where}"
