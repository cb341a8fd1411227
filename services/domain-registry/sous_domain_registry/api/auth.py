"""Bearer-token authentication and scope checks of the REST API (401 and 403)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sous_common.runtime import Runtime
from sous_common.trust import Principal, Scope, denial
from sous_domain_registry.adapters import store
from sous_domain_registry.domain.access import hash_token

_bearer = HTTPBearer(auto_error=False, description="A token issued by POST /v1/tokens.")


def runtime(request: Request) -> Runtime:
    """Return the registry's runtime (set by the lifespan)."""
    rt: Runtime = request.app.state.runtime
    return rt


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Return the caller, or answer 401 with what is wrong."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401, "missing bearer token: send 'Authorization: Bearer <token>'", challenge
        )
    async with runtime(request).pool.acquire() as conn:
        found = await store.principal_of(conn, hash_token(credentials.credentials))
    if found is None:
        raise HTTPException(401, "unknown or revoked token", challenge)
    return found


Caller = Annotated[Principal, Depends(principal)]
Rt = Annotated[Runtime, Depends(runtime)]


def require(who: Principal, scope: Scope, domain: str | None) -> None:
    """Answer 403 naming the missing scope unless `who` holds it on `domain`."""
    if (why := denial(who, scope, domain)) is not None:
        raise HTTPException(403, why)
