"""Whether a sandbox may merge now: the one check the merge and the question about it share."""

from __future__ import annotations

from typing import Any

from sous_contracts.registry import EntityKind
from sous_contracts.specs import KitchenSpec
from sous_domain_registry import sandbox
from sous_domain_registry.adapters import runs as run_rows
from sous_domain_registry.adapters import store
from sous_domain_registry.domain.readmodel import merge_reasons


async def merge_refusals(conn: Any, kitchen: str) -> tuple[str | None, list[str]] | None:
    """Return the kitchen's parent and why it may not merge now (no reasons: it may).

    None when there is no such kitchen. The merge calls this under the catalog lock, in its
    own transaction; the read-only question calls it without, and sees what a merge would.
    """
    e = await store.get(conn, f"kitchen:{kitchen}")
    if e is None:
        return None
    parent = KitchenSpec.model_validate(e.spec).parent
    if parent is None:
        return None, merge_reasons(kitchen, None, [], [], set(), [])
    latest = await run_rows.latest_per_recipe(conn, kitchen)
    mine = [v for v in (await store.scoped(conn, kitchen)).values() if v.kind == EntityKind.RECIPE]
    proven = await run_rows.proven(conn, kitchen, mine)
    changed = [f"{v.domain}/{v.name}" for v in mine]
    passed = {f"{v.domain}/{v.name}" for v in mine if v.entity_id in proven}
    invalid = [str(x) for x in await sandbox.promotion_errors(conn, kitchen)]
    return parent, merge_reasons(kitchen, parent, latest, changed, passed, invalid)
