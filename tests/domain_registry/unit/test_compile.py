"""Compiling recipes for the scheduler: SQL inlined, ingredients expanded, refs normalised."""

from __future__ import annotations

from sous_contracts.registry import EntityKind
from sous_contracts.specs import RecipeSpec
from sous_domain_registry.domain.bundle import parse
from sous_domain_registry.domain.compile import compile_recipe, content_hash
from sous_domain_registry.domain.entities import (
    catalog_of,
    entities,
    plan,
    republished_ingredients,
)
from sous_domain_registry.domain.validate import validate
from tests.domain_registry.mesh import mesh_files


def catalog(files=None):
    cat, errors = parse(files or mesh_files())
    assert errors == []
    return cat


def test_ingredient_is_expanded_in_place():
    cat = catalog()
    spec = compile_recipe(cat, "sales", cat.recipes[("sales", "daily")])
    steps = spec["steps"]
    assert list(steps) == ["ingest", "staging", "model", "publish__snapshot", "publish__register"]
    assert steps["publish__snapshot"]["needs"] == ["model"]
    assert steps["publish__register"]["needs"] == ["publish__snapshot"]
    assert steps["publish__snapshot"]["params"] == {
        "published_schema": "published${params.target_schema_suffix}",
        "table": "sales${params.target_schema_suffix}.orders_daily",
        "name": "sales_orders_daily",
    }
    assert [t["name"] for t in steps["publish__snapshot"]["tests"]] == ["snapshot_not_empty"]
    RecipeSpec.model_validate(spec)


def test_sql_files_are_inlined_from_the_owning_domain():
    cat = catalog()
    steps = compile_recipe(cat, "sales", cat.recipes[("sales", "daily")])["steps"]
    assert steps["staging"]["run"]["file"] is None
    assert steps["staging"]["run"]["sql"].startswith(
        "CREATE TABLE IF NOT EXISTS sales${params.target_schema_suffix}.stg_orders"
    )
    # The ingredient's SQL comes from the platform folder, not the including domain's.
    assert "catalog" in steps["publish__register"]["run"]["sql"]


def test_steps_needing_a_use_step_need_all_its_leaves():
    files = mesh_files()
    step = "  announce:\n    needs: [publish]\n    run: {kind: noop}\n"
    head, _, tail = files["sales/recipes/daily.yaml"].partition("variations:\n")
    files["sales/recipes/daily.yaml"] = head + step + "variations:\n" + tail
    cat = catalog(files)
    steps = compile_recipe(cat, "sales", cat.recipes[("sales", "daily")])["steps"]
    assert steps["announce"]["needs"] == ["publish__register"]


def test_nested_recipe_refs_are_normalised():
    files = mesh_files()
    files["finance/recipes/revenue.yaml"] = files["finance/recipes/revenue.yaml"].replace(
        "  publish:\n", "  fx:\n    recipe: fx_rates\n  publish:\n"
    )
    fx = "recipe: fx_rates\nsteps:\n  get: {run: {kind: noop}}\n"
    files["finance/recipes/fx_rates.yaml"] = fx
    cat = catalog(files)
    steps = compile_recipe(cat, "finance", cat.recipes[("finance", "revenue")])["steps"]
    assert steps["fx"]["recipe"] == "finance/fx_rates"


def test_versions_are_content_hashes_and_stable():
    a, b = entities(catalog()), entities(catalog())
    assert a == b
    daily = a["recipe:sales/daily"]
    assert daily.version == content_hash(daily.spec)
    assert daily.version.startswith("sha256:")
    assert len(daily.version) == 71
    assert {e.kind for e in a.values()} == set(EntityKind) - {
        EntityKind.CONNECTION,
        EntityKind.GRANT,
    }
    assert a["ingredient:platform/publish_table@2"].name == "publish_table@2"
    assert a["kitchen:dev"].domain is None


def test_compiled_catalog_recompiles_to_the_same_versions():
    first = entities(catalog())
    stored = catalog_of(list(first.values()))
    assert validate(stored) == []
    again = entities(stored)
    assert {k: v.version for k, v in again.items()} == {k: v.version for k, v in first.items()}


def test_plan_reports_changes_and_downstream_domains():
    old = entities(catalog())
    files = mesh_files()
    files["sales/sql/model.sql"] += "-- tuned\n"
    p = plan(old, catalog_of(list(old.values())).merged(catalog(files)), {"sales"})
    assert [(c.entity_id, c.action) for c in p.changes] == [("recipe:sales/daily", "update")]
    assert p.affected_domains == ["finance", "marketing"]


def test_plan_deletes_what_a_replaced_domain_no_longer_has():
    old = entities(catalog())
    files = {k: v for k, v in mesh_files().items() if k != "payments/recipes/settle.yaml"}
    files = {k: v for k, v in files.items() if not k.startswith("finance/")}
    files = {k: v for k, v in files.items() if k.startswith("payments/")}
    merged = catalog_of(list(old.values())).merged(catalog(files))
    merged.recipes.pop(("finance", "revenue"))  # drop the dependant to keep the plan focused
    p = plan(old, merged, {"payments"})
    # finance/revenue left the merged catalog too, but finance was not part of the bundle.
    assert [(c.entity_id, c.action) for c in p.changes] == [("recipe:payments/settle", "delete")]


def test_removing_an_ingredient_version_still_used_elsewhere_is_refused():
    stored = catalog_of(list(entities(catalog()).values()))
    platform = {
        k: v
        for k, v in mesh_files("platform").items()
        if k != "platform/ingredients/publish_table@1.yaml"
    }
    merged = stored.merged(catalog(platform))
    assert [str(e) for e in validate(merged)] == [
        "payments/recipes/settle.yaml: steps.publish.use: unknown ingredient "
        "'platform/publish_table@1' (versions: @2)"
    ]


def test_a_published_ingredient_version_cannot_change():
    old = entities(catalog())
    files = mesh_files("platform")
    path = "platform/ingredients/publish_table@2.yaml"
    files[path] = files[path].replace("default: published", "default: shared")
    bundle = catalog(files)
    merged = catalog_of(list(old.values())).merged(bundle)
    assert validate(merged) == []
    assert [str(e) for e in republished_ingredients(old, entities(merged), bundle.files)] == [
        f"{path}: version: ingredient platform/publish_table@2 is published and cannot change; "
        "give the change a new version"
    ]


def test_a_use_steps_condition_guards_where_the_ingredient_starts():
    cat = catalog()
    steps = compile_recipe(cat, "sales", cat.recipes[("sales", "daily")])["steps"]
    assert steps["publish__snapshot"]["when"] == (
        "(params.publish && steps.model.tests.warnings == 0)"
    )
    # The rest of the ingredient follows its start: skipped when it is.
    assert steps["publish__register"]["when"] is None
    assert steps["publish__register"]["if_needs_skipped"] == "skip"
