"""Kitchen applies: which documents they take, scoped ids, and their diff."""

from __future__ import annotations

from sous_contracts.registry import EntityKind
from sous_domain_registry.domain.bundle import parse
from sous_domain_registry.domain.catalog import Catalog
from sous_domain_registry.domain.entities import Entity
from sous_domain_registry.domain.scoped import refusals, rescope, scoped_plan
from tests.domain_registry.mesh import mesh_files


def recipe(version: str, kitchen: str | None = None) -> Entity:
    eid = "recipe:sales/daily" + (f"@{kitchen}" if kitchen else "")
    return Entity(eid, EntityKind.RECIPE, "sales", "daily", version, {}, kitchen=kitchen)


def test_only_recipes_of_known_domains_into_known_kitchens():
    base, errors = parse(mesh_files())
    assert errors == []
    files = {k: v for k, v in mesh_files("sales").items() if "/recipes/" in k or "/sql/" in k}
    bundle, errors = parse(files, with_domains=False)
    assert (errors, parse(files)[1] != []) == ([], True)
    assert refusals(bundle, "dev", base) == []
    got = [str(e) for e in refusals(bundle, "qa", Catalog(kitchens=base.kitchens))]
    assert got == [
        "(request): kitchen: unknown kitchen 'qa' (kitchens: dev, dev-sam, prod)",
        "sales/domain.yaml: unknown domain 'sales': apply it first",
    ]
    folder, _ = parse(mesh_files("sales"))
    assert refusals(folder, "dev", base) == []
    changed = mesh_files("sales")
    changed["sales/domain.yaml"] += "\ndescription: changed\n"
    changed["kitchens/qa.yaml"] = "kitchen: qa\nparent: dev\n"
    folder, errors = parse(changed)
    assert errors == []
    assert [str(e) for e in refusals(folder, "dev", base)] == [
        "kitchens/qa.yaml: only recipes can be applied into kitchen 'dev'",
        "sales/domain.yaml: only recipes can be applied into kitchen 'dev';"
        " this domain.yaml differs from the base",
    ]


def test_rescope_moves_a_version_between_kitchens_and_the_base():
    mine = rescope(recipe("v1"), "dev-alice")
    assert (mine.entity_id, mine.kitchen) == ("recipe:sales/daily@dev-alice", "dev-alice")
    parent = rescope(mine, "dev")
    assert (parent.entity_id, parent.kitchen, parent.version) == (
        "recipe:sales/daily@dev",
        "dev",
        "v1",
    )
    base = rescope(mine, None)
    assert (base.entity_id, base.kitchen) == ("recipe:sales/daily", None)


def test_scoped_plan_creates_updates_and_never_deletes():
    old = {"recipe:sales/daily@dev": recipe("v1", "dev")}
    p = scoped_plan(old, [recipe("v2", "dev")], Catalog())
    assert [(c.action, c.old_version, c.new_version) for c in p.changes] == [("update", "v1", "v2")]
    assert p.deletes == []
    assert scoped_plan(old, [recipe("v1", "dev")], Catalog()).changes == []
    created = scoped_plan({}, [recipe("v1", "dev")], Catalog())
    assert [c.action for c in created.changes] == ["create"]
