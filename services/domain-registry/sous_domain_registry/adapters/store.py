"""PostgreSQL storage of entities, their immutable versions, grants, tokens and the audit."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from sous_common import db
from sous_common.db import AnyConnection
from sous_common.trust import Principal
from sous_contracts.registry import EntityKind, RegistryEntityChanged
from sous_domain_registry.domain.entities import Entity


def _entity(row: asyncpg.Record) -> Entity:
    return Entity(
        row["entity_id"],
        EntityKind(row["kind"]),
        row["domain"],
        row["name"],
        row["version"],
        json.loads(row["spec"]),
        json.loads(row["source"]) if row["source"] is not None else None,
        row["kitchen"],
    )


async def lock_catalog(conn: AnyConnection) -> None:
    """Serialise changes to the catalog until the transaction ends."""
    await db.lock(conn, "sous-registry-catalog")


async def current(conn: AnyConnection, kind: EntityKind | None = None) -> dict[str, Entity]:
    """Return the live base entities (optionally of one kind) by entity id."""
    rows = await conn.fetch(
        "SELECT * FROM entities WHERE NOT deleted AND kitchen IS NULL"
        " AND ($1::text IS NULL OR kind = $1) ORDER BY entity_id",
        kind.value if kind else None,
    )
    return {r["entity_id"]: _entity(r) for r in rows}


async def scoped(conn: AnyConnection, kitchen: str) -> dict[str, Entity]:
    """Return the live versions applied into one kitchen, by (suffixed) entity id."""
    rows = await conn.fetch(
        "SELECT * FROM entities WHERE NOT deleted AND kitchen = $1 ORDER BY entity_id", kitchen
    )
    return {r["entity_id"]: _entity(r) for r in rows}


async def kitchen_versions(conn: AnyConnection, kitchen: str) -> list[dict[str, Any]]:
    """Return the recipes applied into one kitchen: version, when and by whom, base version."""
    rows = await conn.fetch(
        "SELECT k.entity_id, k.domain, k.name AS recipe, k.version, b.version AS base_version,"
        " k.updated_at AS applied_at, k.changed_by AS applied_by FROM entities k"
        " LEFT JOIN entities b ON b.entity_id = split_part(k.entity_id, '@', 1)"
        " AND b.kitchen IS NULL AND NOT b.deleted"
        " WHERE k.kitchen = $1 AND k.kind = 'recipe' AND NOT k.deleted ORDER BY k.entity_id",
        kitchen,
    )
    return [dict(r) for r in rows]


async def get(conn: AnyConnection, entity_id: str) -> Entity | None:
    """Return one live entity."""
    row = await conn.fetchrow(
        "SELECT * FROM entities WHERE entity_id = $1 AND NOT deleted", entity_id
    )
    return _entity(row) if row else None


async def versions(conn: AnyConnection, entity_id: str) -> list[dict[str, Any]]:
    """Return every version an entity had, oldest first."""
    rows = await conn.fetch(
        "SELECT version, created_by, created_at FROM entity_versions WHERE entity_id = $1"
        " ORDER BY created_at, version",
        entity_id,
    )
    return [dict(r) for r in rows]


async def put(conn: AnyConnection, e: Entity, *, by: str | None) -> None:
    """Make `e` the live version of its entity and keep the version forever."""
    spec = json.dumps(e.spec)
    source = json.dumps(e.source) if e.source is not None else None
    await conn.execute(
        "INSERT INTO entity_versions (entity_id, version, spec, created_by)"
        " VALUES ($1, $2, $3::jsonb, $4) ON CONFLICT DO NOTHING",
        e.entity_id,
        e.version,
        spec,
        by,
    )
    await conn.execute(
        "INSERT INTO entities (entity_id, kind, domain, name, version, spec, deleted, changed_by,"
        " source, kitchen) VALUES ($1, $2, $3, $4, $5, $6::jsonb, false, $7, $8::jsonb, $9)"
        " ON CONFLICT (entity_id) DO UPDATE SET kind = excluded.kind, domain = excluded.domain,"
        " name = excluded.name, version = excluded.version, spec = excluded.spec,"
        " deleted = false, changed_by = excluded.changed_by, source = excluded.source,"
        " kitchen = excluded.kitchen, updated_at = now()",
        e.entity_id,
        e.kind.value,
        e.domain,
        e.name,
        e.version,
        spec,
        by,
        source,
        e.kitchen,
    )


async def delete(conn: AnyConnection, entity_id: str, *, by: str | None) -> None:
    """Mark an entity deleted (its versions stay)."""
    await conn.execute(
        "UPDATE entities SET deleted = true, changed_by = $2, updated_at = now()"
        " WHERE entity_id = $1",
        entity_id,
        by,
    )


async def apply_record(conn: AnyConnection, rec: RegistryEntityChanged) -> None:
    """Apply one changelog record to the store (rebuilding a view from the topic)."""
    e = Entity(
        rec.entity_id, rec.kind, rec.domain, rec.name, rec.version, rec.spec, kitchen=rec.kitchen
    )
    if rec.kind == EntityKind.GRANT:
        await save_grant(conn, Principal.from_grant(rec.name, rec.spec))
    await put(conn, e, by=rec.changed_by)
    if rec.deleted:
        await delete(conn, rec.entity_id, by=rec.changed_by)


async def view(conn: AnyConnection) -> list[dict[str, Any]]:
    """Return the whole present state, for comparing two stores."""
    rows = await conn.fetch(
        "SELECT entity_id, kind, domain, name, version, spec::text AS spec, deleted, kitchen"
        " FROM entities ORDER BY entity_id"
    )
    return [dict(r) for r in rows]


async def save_grant(conn: AnyConnection, principal: Principal) -> None:
    """Set a principal's scopes and public keys."""
    await conn.execute(
        "INSERT INTO grants (principal, scopes, keys) VALUES ($1, $2::jsonb, $3::jsonb)"
        " ON CONFLICT (principal) DO UPDATE SET scopes = excluded.scopes, keys = excluded.keys,"
        " updated_at = now()",
        principal.name,
        json.dumps(principal.scopes),
        json.dumps(list(principal.keys)),
    )


async def grant_of(conn: AnyConnection, principal: str) -> Principal | None:
    """Return a principal's scopes and keys, or None when it has no grant."""
    row = await conn.fetchrow(
        "SELECT scopes::text AS scopes, keys::text AS keys FROM grants WHERE principal = $1",
        principal,
    )
    if row is None:
        return None
    return Principal(principal, json.loads(row["scopes"]), tuple(json.loads(row["keys"])))


async def save_token(conn: AnyConnection, token_hash: str, principal: str) -> None:
    """Store a token's hash for a principal (idempotent)."""
    await conn.execute(
        "INSERT INTO tokens (token_hash, principal) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        token_hash,
        principal,
    )


async def principal_of(conn: AnyConnection, token_hash: str) -> Principal | None:
    """Return the principal of a live token (scopes and keys), or None."""
    row = await conn.fetchrow(
        "SELECT t.principal, coalesce(g.scopes, '{}'::jsonb)::text AS scopes,"
        " coalesce(g.keys, '[]'::jsonb)::text AS keys FROM tokens t"
        " LEFT JOIN grants g USING (principal) WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
        token_hash,
    )
    if row is None:
        return None
    return Principal(row["principal"], json.loads(row["scopes"]), tuple(json.loads(row["keys"])))


async def audit(
    conn: AnyConnection, principal: str, action: str, target: str, detail: dict[str, Any]
) -> None:
    """Record who changed what (the time is the row's)."""
    await conn.execute(
        "INSERT INTO audit (principal, action, target, detail) VALUES ($1, $2, $3, $4::jsonb)",
        principal,
        action,
        target,
        json.dumps(detail, default=str),
    )


async def audit_log(conn: AnyConnection, limit: int) -> list[dict[str, Any]]:
    """Return the latest audit entries, newest first."""
    rows = await conn.fetch(
        "SELECT id, at, principal, action, target, detail::text AS detail FROM audit"
        " ORDER BY id DESC LIMIT $1",
        limit,
    )
    return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]


async def expired_kitchens(conn: AnyConnection) -> list[Entity]:
    """Return the live kitchens whose time to live has run out since they were last set."""
    rows = await conn.fetch(
        "SELECT * FROM entities WHERE kind = 'kitchen' AND NOT deleted"
        " AND spec->>'ttl' IS NOT NULL"
        " AND updated_at + make_interval(secs => (spec->>'ttl')::float8) <= now()"
        " ORDER BY entity_id"
    )
    return [_entity(r) for r in rows]
