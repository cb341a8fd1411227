"""PostgreSQL access of the scheduler's registry view: recipes, kitchens and domains."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sous_common import metrics
from sous_common.db import AnyConnection
from sous_contracts.registry import RegistryEntityChanged
from sous_contracts.specs import DomainSpec, KitchenSpec, RecipeSpec
from sous_scheduler.domain.plan import Catalog
from sous_scheduler.domain.versions import pick, run_kitchen

_RECIPES: dict[str, RecipeSpec] = {}


def recipe_from(spec: Any) -> RecipeSpec:
    """Parse a compiled recipe, caching by content (specs are immutable per version)."""
    text = spec if isinstance(spec, str) else json.dumps(spec, sort_keys=True)
    if (cached := _RECIPES.get(text)) is None:
        cached = RecipeSpec.model_validate_json(text)
        if len(_RECIPES) > 512:
            _RECIPES.clear()
        _RECIPES[text] = cached
    return cached


async def upsert_entity(conn: AnyConnection, change: RegistryEntityChanged) -> None:
    """Apply one changelog record to the registry view, a generation further."""
    await conn.execute(
        "WITH bumped AS (UPDATE registry_generation SET n = n + 1)"
        " INSERT INTO registry (entity_id, kind, domain, name, version, spec, deleted, kitchen)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)"
        " ON CONFLICT (entity_id) DO UPDATE SET kind = $2, domain = $3, name = $4,"
        " version = $5, spec = $6::jsonb, deleted = $7, kitchen = $8, updated_at = now()",
        change.entity_id,
        change.kind.value,
        change.domain,
        change.name,
        change.version,
        json.dumps(change.spec),
        change.deleted,
        change.kitchen,
    )


async def entities(conn: AnyConnection, kind: str) -> list[Any]:
    """Return the live base entities of one kind (versions applied into kitchens left out)."""
    return list(
        await conn.fetch(
            "SELECT entity_id, domain, name, version, spec FROM registry"
            " WHERE kind = $1 AND NOT deleted AND kitchen IS NULL ORDER BY entity_id",
            kind,
        )
    )


async def recipe_versions(conn: AnyConnection) -> list[Any]:
    """Return every live version of every recipe: the base ones and those of kitchens."""
    return list(
        await conn.fetch(
            "SELECT entity_id, domain, name, version, spec, kitchen FROM registry"
            " WHERE kind = 'recipe' AND NOT deleted ORDER BY entity_id"
        )
    )


async def kitchens(conn: AnyConnection) -> dict[str, KitchenSpec]:
    """Return every live kitchen by name."""
    rows = await entities(conn, "kitchen")
    return {r["name"]: KitchenSpec.model_validate(json.loads(r["spec"])) for r in rows}


async def catalog(
    conn: AnyConnection,
    domain: str,
    recipe: str,
    *,
    kitchen: str | None = None,
    variation: str | None = None,
) -> Catalog:
    """Load what planning a run of domain/recipe needs.

    The recipe is the version of the run's kitchen (`kitchen`, else the variation's): the
    first kitchen from there up to the root with a version of its own, else the base one.
    """
    rows = await conn.fetch(
        "SELECT kind, name, domain, version, spec, kitchen FROM registry WHERE NOT deleted AND ("
        " (kind = 'recipe' AND domain = $1 AND name = $2) OR (kitchen IS NULL AND"
        " ((kind = 'domain' AND name = $1) OR kind = 'kitchen')))",
        domain,
        recipe,
    )
    found_domain = None
    recipes: dict[str | None, Any] = {}
    kitchens: dict[str, KitchenSpec] = {}
    for r in rows:
        spec = json.loads(r["spec"])
        if r["kind"] == "recipe":
            recipes[r["kitchen"]] = r
        elif r["kind"] == "domain":
            found_domain = DomainSpec.model_validate(spec)
        else:
            kitchens[r["name"]] = KitchenSpec.model_validate(spec)
    base = recipe_from(recipes[None]["spec"]) if None in recipes else None
    chosen = pick(recipes, kitchens, run_kitchen(kitchen, variation, base))
    if chosen is None:
        return Catalog(None, None, found_domain, kitchens)
    return Catalog(recipe_from(chosen["spec"]), chosen["version"], found_domain, kitchens)


async def registry_generation(conn: AnyConnection) -> int:
    """The registry view's generation: it moves on with every change written to it."""
    n: int = await conn.fetchval("SELECT n FROM registry_generation")
    return n


async def claim_and_look(
    conn: AnyConnection, consumer: str, message_ids: list[uuid.UUID]
) -> tuple[set[uuid.UUID], int]:
    """Claim messages in the inbox and read the registry view's generation: one round trip.

    Returns the fresh message ids (as `claim_many`) and the generation.
    """
    row = await conn.fetchrow(
        "WITH claimed AS (INSERT INTO inbox (consumer, message_id) SELECT $1, unnest($2::uuid[])"
        " ON CONFLICT DO NOTHING RETURNING message_id)"
        " SELECT (SELECT array_agg(message_id) FROM claimed) AS fresh,"
        " (SELECT n FROM registry_generation) AS generation",
        consumer,
        message_ids,
    )
    assert row is not None
    fresh = set(row["fresh"] or ())
    metrics.duplicates(consumer, len(set(message_ids)) - len(fresh))
    return fresh, row["generation"]
