"""Replaying the changelog topic into an empty store rebuilds an identical view."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from sous_common.db import create_pool
from sous_common.migrate import common_migrations, load, migrate
from sous_contracts.registry import RegistryEntityChanged
from sous_contracts.topics import REGISTRY_CHANGELOG
from sous_domain_registry.adapters import store
from sous_domain_registry.service import rebuild
from tests.conftest import drop_schemas
from tests.domain_registry.conftest import read_topic
from tests.domain_registry.mesh import mesh_files

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_replaying_the_changelog_rebuilds_an_identical_view(registry, db_settings):
    client = registry.client
    assert (await client.post("/v1/apply", json={"files": mesh_files()})).status_code == 200
    files = mesh_files("marketing")
    files["marketing/sql/dashboard.sql"] += "-- v2\n"
    files["marketing/recipes/weekly.yaml"] = "recipe: weekly\nsteps:\n  s: {run: {kind: noop}}\n"
    assert (await client.post("/v1/apply", json={"files": files})).status_code == 200
    del files["marketing/recipes/weekly.yaml"]
    assert (await client.post("/v1/apply", json={"files": files})).status_code == 200
    assert (
        await client.post("/v1/kitchens", json={"name": "sb", "from": "dev"})
    ).status_code == 201
    assert (await client.delete("/v1/kitchens/sb")).status_code == 204
    await registry.token("bob", {"sales": ["read"]})

    async with registry.pool.acquire() as conn:
        original = await store.view(conn)
    last = {row["entity_id"]: (row["version"], row["deleted"]) for row in original}
    topic = REGISTRY_CHANGELOG.full_name(registry.settings.kafka.topic_prefix)

    def caught_up(messages) -> bool:
        seen = {m.entity_id: (m.version, m.deleted) for m in messages}
        return seen == last

    records = await read_topic(registry.settings.kafka, topic, until=caught_up)
    assert all(isinstance(m, RegistryEntityChanged) for m in records)

    empty = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(db_settings.url)
    try:
        await migrate(
            conn, empty, common_migrations() + load("r", "sous_domain_registry.migrations")
        )
    finally:
        await conn.close()
    pool = await create_pool(db_settings, schema=empty)
    try:
        assert await rebuild(pool, records) == len(records)
        async with pool.acquire() as c:
            rebuilt = await store.view(c)
            grant = await store.principal_of(c, "unused")
            scopes = await c.fetchval("SELECT scopes::text FROM grants WHERE principal = 'bob'")
    finally:
        await pool.close()
        await drop_schemas(db_settings.url, empty)
    assert rebuilt == original
    assert {r["entity_id"] for r in rebuilt if r["deleted"]} == {
        "recipe:marketing/weekly",
        "kitchen:sb",
    }
    assert grant is None
    assert scopes == '{"sales": ["read"]}'
