"""Use cases of the catalog: apply specs, tokens and grants, kitchens; each one transaction."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sous_common import inbox, outbox
from sous_common.logs import get_logger
from sous_common.runtime import Runtime
from sous_common.trust import Principal
from sous_contracts.registry import ApplySpecs, EntityKind, RegistryEntityChanged
from sous_contracts.specs import KitchenSpec
from sous_domain_registry import sandbox
from sous_domain_registry.adapters import store
from sous_domain_registry.changes import ApplyResult, commit, record
from sous_domain_registry.domain.bundle import parse
from sous_domain_registry.domain.catalog import kitchen_file
from sous_domain_registry.domain.compile import content_hash
from sous_domain_registry.domain.entities import (
    Entity,
    catalog_of,
    entities,
    plan,
    republished_ingredients,
)
from sous_domain_registry.domain.errors import ConflictError, RefusedError, SpecError
from sous_domain_registry.domain.secrets import reference_errors
from sous_domain_registry.domain.validate import validate
from sous_domain_registry.merging import merge_refusals

log = get_logger(__name__)


async def apply_in(
    rt: Runtime, conn: Any, files: dict[str, str], *, principal: str, dry_run: bool = False
) -> ApplyResult:
    """Validate and apply a bundle inside the caller's transaction; raise RefusedError."""
    bundle, errors = parse(files)
    if not files:
        errors.append(SpecError("(bundle)", "", "no spec files"))
    if errors:
        raise RefusedError(errors)
    await store.lock_catalog(conn)
    old = await store.current(conn)
    existing = catalog_of([e for e in old.values() if e.kind != EntityKind.GRANT])
    merged = existing.merged(bundle)
    if errors := validate(merged):
        raise RefusedError(errors)
    old_specs = {k: v for k, v in old.items() if v.kind != EntityKind.GRANT}
    new = entities(merged)
    if errors := republished_ingredients(old_specs, new, bundle.files):
        raise RefusedError(errors)
    p = plan(old_specs, merged, set(bundle.domains), new)
    changes = [asdict(c) for c in p.changes]
    if not dry_run and p.changes:
        await commit(rt, conn, p, by=principal)
        targets = sorted(bundle.domains) + [f"kitchen:{k}" for k in sorted(bundle.kitchens)]
        await store.audit(
            conn,
            principal,
            "apply",
            ",".join(targets),
            {"changes": changes, "affected_domains": p.affected_domains},
        )
    return ApplyResult(not dry_run, changes, p.affected_domains)


async def apply(
    rt: Runtime,
    files: dict[str, str],
    *,
    principal: str,
    dry_run: bool = False,
    kitchen: str | None = None,
) -> ApplyResult:
    """Validate and apply a bundle all or nothing; raise RefusedError with every error.

    With a kitchen, the bundle's recipes become versions of that kitchen (the base stays).
    Returns once the changes are on the changelog, so a run started right after an apply
    finds the recipes it names.
    """
    async with rt.transaction() as conn:
        if kitchen is not None:
            result = await sandbox.apply_into(
                rt, conn, files, kitchen, principal=principal, dry_run=dry_run
            )
        else:
            result = await apply_in(rt, conn, files, principal=principal, dry_run=dry_run)
    if result.applied:
        await rt.outbox_drained()
    return result


async def apply_command(rt: Runtime, command: ApplySpecs, consumer: str) -> None:
    """Apply a bundle sent on the registry's command topic, once; refusals are audited.

    The consumer verified its signature and the signer's scopes before (its principal is
    the signer, or the one an admin of every domain signed for).
    """
    principal = command.principal or "unknown"
    async with rt.transaction() as conn:
        if not await inbox.claim(conn, consumer, command.message_id):
            return
        try:
            async with outbox.savepoint(conn):  # a refusal drops its emits too
                if command.kitchen is not None:
                    await sandbox.apply_into(
                        rt, conn, command.files, command.kitchen, principal=principal
                    )
                else:
                    await apply_in(rt, conn, command.files, principal=principal)
        except RefusedError as exc:
            errors = [str(e) for e in exc.errors]
            log.warning("apply refused", bundle=command.bundle_id, errors=errors)
            await store.audit(
                conn, principal, "apply.refused", command.bundle_id, {"errors": errors}
            )


def grant_entity(principal: Principal) -> Entity:
    """Return the changelog entity of a grant: scopes and public keys, never a token hash."""
    spec: dict[str, Any] = {"principal": principal.name, "scopes": principal.scopes}
    if principal.keys:
        spec["keys"] = list(principal.keys)
    return Entity(
        f"grant:{principal.name}", EntityKind.GRANT, None, principal.name, content_hash(spec), spec
    )


async def _publish_grant(rt: Runtime, conn: Any, principal: Principal, *, by: str) -> None:
    e = grant_entity(principal)
    await store.save_grant(conn, principal)
    before = await store.get(conn, e.entity_id)
    if before is None or before.version != e.version:
        await store.put(conn, e, by=by)
        await rt.emit(conn, [record(e, by=by)])


async def set_grant(
    rt: Runtime, principal: str, scopes: dict[str, list[str]], token_hash: str | None, *, by: str
) -> None:
    """Set a principal's scopes (and add a token), publish the grant, audit it."""
    async with rt.transaction() as conn:
        held = await store.grant_of(conn, principal)
        keys = held.keys if held is not None else ()
        await _publish_grant(rt, conn, Principal(principal, scopes, keys), by=by)
        if token_hash is not None:
            await store.save_token(conn, token_hash, principal)
        await store.audit(conn, by, "grant", principal, {"scopes": scopes})


async def set_keys(
    rt: Runtime, principal: str, add: str | None, remove: str | None, *, by: str
) -> bool:
    """Add or remove a public key of a principal and publish its grant.

    Returns False when the principal has no grant.
    """
    async with rt.transaction() as conn:
        held = await store.grant_of(conn, principal)
        if held is None:
            return False
        keys = [k for k in held.keys if k != remove]
        if add is not None and add not in keys:
            keys.append(add)
        await _publish_grant(rt, conn, Principal(principal, held.scopes, tuple(keys)), by=by)
        action, key = ("key.add", add) if add is not None else ("key.remove", remove)
        await store.audit(conn, by, action, principal, {"public_key": key})
    await rt.outbox_drained()
    return True


async def bootstrap_grant(rt: Runtime, principal: Principal) -> None:
    """Make a configured principal's grant hold its scopes and configured keys (start-up)."""
    async with rt.transaction() as conn:
        held = await store.grant_of(conn, principal.name)
        keys = tuple(dict.fromkeys([*(held.keys if held else ()), *principal.keys]))
        await _publish_grant(
            rt, conn, Principal(principal.name, principal.scopes, keys), by="system"
        )


async def put_kitchen(rt: Runtime, spec: KitchenSpec, *, by: str) -> Entity:
    """Create a kitchen after validating it against the catalog; raise RefusedError.

    Returns once the kitchen is on the changelog, so a run queued right after (its
    provisioning recipe) names a kitchen the scheduler can find.
    """
    bundle = catalog_of([])
    bundle.kitchens[spec.kitchen] = spec
    async with rt.transaction() as conn:
        await store.lock_catalog(conn)
        old = await store.current(conn)
        if f"kitchen:{spec.kitchen}" in old:
            raise RefusedError(
                [SpecError(f"kitchens/{spec.kitchen}.yaml", "kitchen", "kitchen exists already")]
            )
        existing = catalog_of([e for e in old.values() if e.kind != EntityKind.GRANT])
        merged = existing.merged(bundle)
        if errors := reference_errors(kitchen_file(spec.kitchen), spec) + validate(merged):
            raise RefusedError(errors)
        p = plan({k: v for k, v in old.items() if v.kind != EntityKind.GRANT}, merged, set())
        await commit(rt, conn, p, by=by)
        await store.audit(conn, by, "kitchen.create", spec.kitchen, spec.model_dump(mode="json"))
    await rt.outbox_drained()
    return p.upserts[0]


async def _delete_in(
    rt: Runtime, conn: Any, e: Entity, *, by: str, action: str, detail: dict[str, Any]
) -> None:
    gone = await sandbox.tombstone(rt, conn, e.name, by=by)
    await store.delete(conn, e.entity_id, by=by)
    await rt.emit(conn, [record(e, by=by, deleted=True)])
    await store.audit(conn, by, action, e.name, {**detail, "deleted": [g.entity_id for g in gone]})


async def delete_kitchen(
    rt: Runtime, name: str, *, by: str, action: str = "kitchen.delete"
) -> bool:
    """Delete a kitchen and the versions applied into it; False when there is none."""
    async with rt.transaction() as conn:
        await store.lock_catalog(conn)
        e = await store.get(conn, f"kitchen:{name}")
        if e is None:
            return False
        await _delete_in(rt, conn, e, by=by, action=action, detail={})
    return True


async def merge_kitchen(rt: Runtime, name: str, *, by: str) -> list[dict[str, Any]] | None:
    """Promote a sandbox's versions to its parent, then delete it; None when there is none.

    A parent without a parent of its own (a root kitchen) has no versions of its own: the
    promoted versions replace the base ones.

    Raises:
        ConflictError: naming every reason `merge_refusals` finds (no parent, latest runs
            failed, a changed recipe without a passing run since, versions that would not
            validate).
        RefusedError: when the promoted versions no longer validate (the check finds that
            first; promotion checks again).
    """
    async with rt.transaction() as conn:
        await store.lock_catalog(conn)
        e = await store.get(conn, f"kitchen:{name}")
        checked = await merge_refusals(conn, name)
        if e is None or checked is None:
            return None
        parent, reasons = checked
        if reasons:
            raise ConflictError("; ".join(reasons))
        p = await store.get(conn, f"kitchen:{parent}") if parent is not None else None
        root = p is None or KitchenSpec.model_validate(p.spec).parent is None
        changes = await sandbox.promote(rt, conn, name, None if root else parent, by=by)
        await _delete_in(rt, conn, e, by=by, action="kitchen.merge", detail={"promoted": changes})
    return changes


async def rebuild(rt_pool: Any, records: list[RegistryEntityChanged]) -> int:
    """Apply changelog records, in topic order, to a store; return how many."""
    async with rt_pool.acquire() as conn, conn.transaction():
        for rec in records:
            await store.apply_record(conn, rec)
    return len(records)
