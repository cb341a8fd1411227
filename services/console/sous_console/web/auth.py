"""Sign-in with a registry token kept in an HttpOnly, SameSite cookie; scope checks of pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from sous_common.trust import ANY_DOMAIN, Principal, Scope, denial
from sous_console.web.registry import Registry

COOKIE = "sous_console_token"


class SignInNeeded(Exception):
    """The request carries no valid token: pages redirect to the sign-in form."""


def registry(request: Request) -> Registry:
    """Return the registry client of the app."""
    client: Registry = request.app.state.registry
    return client


def token(request: Request) -> str:
    """Return the caller's token from the cookie, or raise SignInNeeded."""
    value = request.cookies.get(COOKIE)
    if not value:
        raise SignInNeeded
    return value


async def viewer(request: Request) -> Principal:
    """Return the signed-in principal; it must hold `read` somewhere."""
    found = await registry(request).principal(token(request))
    if found is None:
        raise SignInNeeded
    if not any(readable(found)) and denial(found, "read", None) is not None:
        raise HTTPException(403, f"principal '{found.name}' holds no 'read' scope")
    return found


Viewer = Annotated[Principal, Depends(viewer)]


def readable(who: Principal) -> list[str]:
    """Return the domains `who` may read by name; `*` alone means every domain."""
    return [d for d, held in who.scopes.items() if "read" in held or "admin" in held]


def domain_filter(who: Principal) -> list[str] | None:
    """Return the domains the caller may read, or None when it may read them all."""
    return None if who.may("read", None) else [d for d in readable(who) if d != ANY_DOMAIN]


def require(who: Principal, scope: Scope, domain: str | None) -> None:
    """Answer 403 naming the missing scope unless `who` holds it on `domain`."""
    if (why := denial(who, scope, domain)) is not None:
        raise HTTPException(403, why)
