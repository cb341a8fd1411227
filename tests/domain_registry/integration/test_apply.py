"""Applying the example mesh on real PostgreSQL and Kafka; refusals change nothing."""

from __future__ import annotations

import pytest

from sous_contracts.registry import RegistryEntityChanged
from sous_contracts.specs import RecipeSpec
from sous_contracts.topics import REGISTRY_CHANGELOG
from sous_domain_registry.adapters import store
from tests.domain_registry.conftest import read_topic
from tests.domain_registry.mesh import mesh_files
from tests.signing import ADMIN

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def apply(registry, files, **extra):
    return await registry.client.post("/v1/apply", json={"files": files, **extra})


async def snapshot(registry):
    async with registry.pool.acquire() as conn:
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM entity_versions) AS versions,"
            " (SELECT count(*) FROM audit) AS audits"
        )
        return await store.view(conn), dict(counts)


async def test_apply_example_mesh_publishes_the_changelog(registry):
    r = await apply(registry, mesh_files())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["applied"] is True
    created = {c["entity_id"] for c in body["changes"] if c["action"] == "create"}
    assert "recipe:sales/daily" in created
    assert "ingredient:platform/publish_table@2" in created
    assert "kitchen:dev" in created
    topic = REGISTRY_CHANGELOG.full_name(registry.settings.kafka.topic_prefix)
    want = {c["entity_id"] for c in body["changes"]} | {"grant:admin"}
    got = await read_topic(
        registry.settings.kafka, topic, until=lambda ms: want <= {m.entity_id for m in ms}
    )
    records = {m.entity_id: m for m in got if isinstance(m, RegistryEntityChanged)}
    daily = records["recipe:sales/daily"]
    assert (daily.domain, daily.name) == ("sales", "daily")
    spec = RecipeSpec.model_validate(daily.spec)
    assert "publish__snapshot" in spec.steps
    assert (
        "sales${params.target_schema_suffix}.stg_orders"
        in daily.spec["steps"]["staging"]["run"]["sql"]
    )
    assert daily.version.startswith("sha256:")
    assert records["grant:admin"].spec == {
        "principal": "admin",
        "scopes": {"*": ["admin"]},
        "keys": [ADMIN.public_key],
    }
    assert "token" not in str(records["grant:admin"].spec)

    again = await apply(registry, mesh_files())
    assert again.json()["changes"] == []


async def test_dry_run_shows_changes_and_downstream_domains_and_changes_nothing(shared_registry):
    registry = shared_registry
    assert (await apply(registry, mesh_files())).status_code == 200
    before = await snapshot(registry)
    files = mesh_files("sales")
    files["sales/sql/model.sql"] += "-- faster\n"
    r = await apply(registry, files, dry_run=True)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["applied"] is False
    assert [(c["entity_id"], c["action"]) for c in body["changes"]] == [
        ("recipe:sales/daily", "update")
    ]
    assert body["affected_domains"] == ["finance", "marketing"]
    assert await snapshot(registry) == before


REFUSALS = [
    ("sales/recipes/daily.yaml", "needs: [ingest]", "needs: [lod]", "unknown step 'lod'"),
    (
        "sales/recipes/daily.yaml",
        "  ingest:\n    run:",
        "  ingest:\n    needs: [publish]\n    run:",
        "cyclic DAG",
    ),
    ("sales/recipes/daily.yaml", "publish_table@2", "publish_table@9", "unknown ingredient"),
    ("sales/recipes/daily.yaml", 'schedule: "0 2 * * *"', 'schedule: "0 2 * *"', "invalid cron"),
    ("sales/recipes/daily.yaml", "{min_rows: 1000000}", "{min_rows: x}", "expected integer"),
    ("sales/recipes/daily.yaml", "{min_rows: 1000000}", "{rows: 1}", "undeclared param 'rows'"),
    (
        "sales/recipes/daily.yaml",
        "connection: warehouse, file: sql/model",
        "connection: dwh, file: sql/model",
        "unknown connection 'dwh'",
    ),
    (
        "sales/recipes/daily.yaml",
        "  publish:\n    needs: [model]",
        "  fx:\n    recipe: finance/fx\n  publish:\n    needs: [model]",
        "steps.fx.recipe: unknown recipe 'finance/fx'",
    ),
    (
        "finance/recipes/revenue.yaml",
        "    variation: prod\n",
        "    variation: nightly\n",
        "triggers[0].variation: unknown variation 'nightly' (variations: dev, prod)",
    ),
    (
        "sales/recipes/daily.yaml",
        "  dev:\n    kitchen: dev",
        "  dev:\n    kitchen: qa",
        "unknown kitchen 'qa'",
    ),
]


@pytest.mark.parametrize(("path", "old", "new", "reason"), REFUSALS)
async def test_each_refusal_names_the_file_and_changes_nothing(
    shared_registry, path, old, new, reason
):
    registry = shared_registry
    assert (await apply(registry, mesh_files())).status_code == 200
    before = await snapshot(registry)
    files = mesh_files()
    files["sales/sql/model.sql"] += "-- a valid change that must not be half applied\n"
    assert old in files[path]
    files[path] = files[path].replace(old, new, 1)
    r = await apply(registry, files)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert any(e.startswith(f"{path}: ") and reason in e for e in errors), errors
    assert await snapshot(registry) == before


async def test_trigger_cycle_refused_then_accepted_with_opt_in(shared_registry):
    registry = shared_registry
    assert (await apply(registry, mesh_files())).status_code == 200
    files = mesh_files("sales")
    cyc = "triggers:\n  - on: {domain: marketing, recipe: dashboard}\n    variation: prod\n"
    files["sales/recipes/daily.yaml"] = files["sales/recipes/daily.yaml"].replace(
        "steps:\n", cyc + "steps:\n", 1
    )
    r = await apply(registry, files)
    assert r.status_code == 422
    assert any("trigger cycle" in e for e in r.json()["errors"])
    files["sales/recipes/daily.yaml"] = files["sales/recipes/daily.yaml"].replace(
        "    variation: prod\nsteps:",
        "    variation: prod\n    allow_cycle: true\n    max_depth: 2\nsteps:",
    )
    assert (await apply(registry, files)).status_code == 200


async def test_versions_are_immutable_and_kept(registry):
    assert (await apply(registry, mesh_files())).status_code == 200
    files = mesh_files("sales")
    files["sales/sql/model.sql"] += "-- v2\n"
    assert (await apply(registry, files)).status_code == 200
    r = await registry.client.get("/v1/domains/sales/recipes/daily/versions")
    assert r.status_code == 200
    assert len(r.json()) == 2
    current = (await registry.client.get("/v1/domains/sales/recipes/daily")).json()
    assert current["version"] == r.json()[1]["version"]
    async with registry.pool.acquire() as conn:
        with pytest.raises(Exception, match="immutable"):
            await conn.execute("UPDATE entity_versions SET spec = '{}'")


async def test_applying_one_domain_folder_deletes_its_removed_recipes(registry):
    assert (await apply(registry, mesh_files())).status_code == 200
    files = mesh_files("marketing")
    files["marketing/recipes/weekly.yaml"] = "recipe: weekly\nsteps:\n  s: {run: {kind: noop}}\n"
    assert (await apply(registry, files)).status_code == 200
    del files["marketing/recipes/weekly.yaml"]
    r = await apply(registry, files)
    assert [(c["entity_id"], c["action"]) for c in r.json()["changes"]] == [
        ("recipe:marketing/weekly", "delete")
    ]
    assert (await registry.client.get("/v1/domains/marketing/recipes/weekly")).status_code == 404
    topic = REGISTRY_CHANGELOG.full_name(registry.settings.kafka.topic_prefix)
    got = await read_topic(
        registry.settings.kafka,
        topic,
        until=lambda ms: any(m.entity_id == "recipe:marketing/weekly" and m.deleted for m in ms),
    )
    assert got


async def test_ingredients_in_use_or_published_are_protected(shared_registry):
    registry = shared_registry
    assert (await apply(registry, mesh_files())).status_code == 200
    before = await snapshot(registry)
    platform = mesh_files("platform")
    del platform["platform/ingredients/publish_table@1.yaml"]
    r = await apply(registry, platform)
    assert r.status_code == 422
    assert r.json()["errors"] == [
        "payments/recipes/settle.yaml: steps.publish.use: unknown ingredient "
        "'platform/publish_table@1' (versions: @2)"
    ]
    platform = mesh_files("platform")
    path = "platform/ingredients/publish_table@2.yaml"
    platform[path] = platform[path].replace("default: published", "default: shared")
    r = await apply(registry, platform)
    assert r.status_code == 422
    assert r.json()["errors"] == [
        f"{path}: version: ingredient platform/publish_table@2 is published and cannot change; "
        "give the change a new version"
    ]
    assert await snapshot(registry) == before


async def test_a_literal_secret_in_a_connection_is_refused_and_stored_nowhere(shared_registry):
    registry = shared_registry
    assert (await apply(registry, mesh_files())).status_code == 200
    before = await snapshot(registry)
    files = mesh_files("sales")
    password = "hunter2-in-a-spec"
    files["sales/domain.yaml"] = files["sales/domain.yaml"].replace(
        'ref: "secret:warehouse"', f'ref: "postgresql://loader:{password}@db:5432/wh"'
    )
    r = await apply(registry, files)
    assert r.status_code == 422, r.text
    assert (
        "sales/domain.yaml: connections.warehouse.ref: a connection is a reference to the "
        "domain's secret store (secret:NAME), never the value itself"
    ) in r.json()["errors"]
    assert password not in r.text
    assert await snapshot(registry) == before
    kitchen = {"name": "dev-kim", "from": "dev", "connections": {"wh": {"ref": "secret:a/../b"}}}
    k = await registry.client.post("/v1/kitchens", json=kitchen)
    assert k.status_code == 422, k.text
    assert k.json()["errors"][0].startswith(
        "kitchens/dev-kim.yaml: connections.wh.ref: secret name 'a/../b' must be"
    )
    assert await snapshot(registry) == before
