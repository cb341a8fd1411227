"""Routes of security: tokens, the public keys of principals, and the audit trail."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from sous_domain_registry import service
from sous_domain_registry.adapters import store
from sous_domain_registry.api.auth import Caller, Rt, require
from sous_domain_registry.api.errors import errors
from sous_domain_registry.api.models import (
    Identity,
    IssueToken,
    PrincipalKeys,
    PublicKey,
    TokenIssued,
)
from sous_domain_registry.domain.access import hash_token

router = APIRouter(prefix="/v1", tags=["security"], responses=errors(401))


@router.get("/whoami", response_model=Identity, summary="Who the token belongs to")
async def whoami(who: Caller) -> Identity:
    """Return the caller's principal and scopes (what a client such as the console shows)."""
    return Identity(principal=who.name, scopes=who.scopes)


@router.post(
    "/tokens",
    status_code=201,
    response_model=TokenIssued,
    responses=errors(403, 413),
)
async def issue_token(body: IssueToken, rt: Rt, who: Caller) -> TokenIssued:
    """Grant scopes to a principal and issue a new token (shown once, stored hashed)."""
    require(who, "admin", None)
    token = "sous_" + secrets.token_urlsafe(32)
    await service.set_grant(rt, body.principal, body.scopes, hash_token(token), by=who.name)
    return TokenIssued(principal=body.principal, token=token)


async def _change_key(rt: Rt, who: Caller, body: PublicKey, *, add: bool) -> PrincipalKeys:
    principal = body.principal or who.name
    if principal != who.name:
        require(who, "admin", None)
    add_key, remove_key = (body.public_key, None) if add else (None, body.public_key)
    if not await service.set_keys(rt, principal, add_key, remove_key, by=who.name):
        raise HTTPException(404, f"principal {principal!r} has no grant")
    async with rt.pool.acquire() as conn:
        held = await store.grant_of(conn, principal)
    return PrincipalKeys(principal=principal, keys=list(held.keys) if held else [])


@router.post(
    "/keys",
    response_model=PrincipalKeys,
    responses=errors(403, 404, 413),
    summary="Publish a key",
)
async def add_key(body: PublicKey, rt: Rt, who: Caller) -> PrincipalKeys:
    """Publish a public key with a principal's grant; what it signs on Kafka verifies.

    The caller's own grant, unless it holds `admin` on every domain.
    """
    return await _change_key(rt, who, body, add=True)


@router.post(
    "/keys/remove",
    response_model=PrincipalKeys,
    responses=errors(403, 404, 413),
    summary="Revoke a key",
)
async def remove_key(body: PublicKey, rt: Rt, who: Caller) -> PrincipalKeys:
    """Withdraw a public key from a principal's grant; what it signs is refused from then on."""
    return await _change_key(rt, who, body, add=False)


@router.get("/audit", responses=errors(403), summary="Who changed what, when")
async def audit(
    rt: Rt, who: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """Return the newest audit entries."""
    require(who, "admin", None)
    async with rt.pool.acquire() as conn:
        return await store.audit_log(conn, limit)
