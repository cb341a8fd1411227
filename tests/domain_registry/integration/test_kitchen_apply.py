"""Applying recipes into a sandbox kitchen, merging it into its parent and deleting it."""

from __future__ import annotations

import uuid

import pytest

from sous_contracts.registry import RegistryEntityChanged
from sous_contracts.topics import REGISTRY_CHANGELOG
from sous_domain_registry.adapters import store
from tests.domain_registry.conftest import read_topic
from tests.domain_registry.mesh import mesh_files
from tests.domain_registry.run_events import produce, run_events, wait_for_run

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

DAILY = "recipe:sales/daily"


def sandbox_files(min_rows: int = 2) -> dict[str, str]:
    """The sales recipes and their SQL, with the daily recipe changed."""
    files = {k: v for k, v in mesh_files("sales").items() if "/recipes/" in k or "/sql/" in k}
    daily = "sales/recipes/daily.yaml"
    files[daily] = files[daily].replace(
        "min_rows: {type: integer, default: 1,", f"min_rows: {{type: integer, default: {min_rows},"
    )
    assert files[daily] != mesh_files("sales")[daily]
    return files


async def apply(registry, files, **extra):
    return await registry.client.post("/v1/apply", json={"files": files, **extra})


async def versions(registry, kitchen: str | None) -> dict[str, str]:
    async with registry.pool.acquire() as conn:
        found = await (store.current(conn) if kitchen is None else store.scoped(conn, kitchen))
    return {k: e.version for k, e in found.items() if e.kind.value == "recipe"}


async def changelog(registry, until) -> list[RegistryEntityChanged]:
    topic = REGISTRY_CHANGELOG.full_name(registry.settings.kafka.topic_prefix)
    got = await read_topic(registry.settings.kafka, topic, until=until)
    return [m for m in got if isinstance(m, RegistryEntityChanged)]


async def passing_run(registry, kitchen: str, version: str, *, error_failed: int = 0) -> None:
    """Feed a finished sales/daily run of `version` in the kitchen to the read model."""
    run_id = uuid.uuid4()
    events = run_events(run_id, kitchen, error_failed=error_failed, spec_version=version)
    await produce(registry.settings.kafka, events)
    await wait_for_run(registry.client, run_id, "failed" if error_failed else "succeeded")


async def test_merge_needs_a_passing_run_of_each_changed_recipe(registry):
    assert (await apply(registry, mesh_files())).status_code == 200
    r = await registry.client.post("/v1/kitchens", json={"name": "dev-alice", "from": "dev"})
    assert r.status_code == 201, r.text
    base = (await versions(registry, None))[DAILY]
    first = (await apply(registry, sandbox_files(), kitchen="dev-alice")).json()
    changed = first["changes"][0]["new_version"]
    unproven = (
        "kitchen 'dev-alice' cannot merge: no succeeded run without failed error tests in it "
        "since it changed sales/daily; run them in the kitchen first"
    )

    async def refused() -> str:
        # The read-only question answers what the merge then does, reason for reason.
        check = await registry.client.get("/v1/kitchens/dev-alice/merge")
        assert check.status_code == 200, check.text
        assert check.json()["allowed"] is False
        r = await registry.client.post("/v1/kitchens/dev-alice/merge")
        assert r.status_code == 409, r.text
        assert r.json()["detail"] == "; ".join(check.json()["reasons"])
        return str(r.json()["detail"])

    assert await refused() == unproven  # no runs at all
    await passing_run(registry, "dev-alice", changed, error_failed=1)
    assert "sales/daily" in await refused()
    await passing_run(registry, "dev-alice", base)  # the parent's version proves nothing
    assert await refused() == unproven
    await passing_run(registry, "dev-alice", changed)
    again = (await apply(registry, sandbox_files(3), kitchen="dev-alice")).json()
    changed = again["changes"][0]["new_version"]
    assert await refused() == unproven  # the run came before the change
    await passing_run(registry, "dev-alice", changed)
    check = await registry.client.get("/v1/kitchens/dev-alice/merge")
    assert check.json() == {"kitchen": "dev-alice", "parent": "dev", "allowed": True, "reasons": []}
    merged = await registry.client.post("/v1/kitchens/dev-alice/merge")
    assert merged.status_code == 200, merged.text
    assert await versions(registry, "dev") == {f"{DAILY}@dev": changed}
    assert (await registry.client.get("/v1/kitchens/dev-alice/merge")).status_code == 404


async def test_merge_check_gives_every_reason_the_merge_refuses_with(registry):
    assert (await apply(registry, mesh_files())).status_code == 200
    r = await registry.client.post("/v1/kitchens", json={"name": "dev-alice", "from": "dev"})
    assert r.status_code == 201, r.text
    changed = (await apply(registry, sandbox_files(), kitchen="dev-alice")).json()
    await passing_run(registry, "dev-alice", changed["changes"][0]["new_version"], error_failed=1)
    one_domain = await registry.token("sales-reader", {"sales": ["read"]})
    hidden = await registry.client.get("/v1/kitchens/dev-alice/merge", headers=one_domain)
    assert hidden.status_code == 403  # the reasons may name recipes of other domains
    reader = await registry.token("reader", {"*": ["read"]})
    check = await registry.client.get("/v1/kitchens/dev-alice/merge", headers=reader)
    assert check.status_code == 200, check.text
    assert check.json() == {
        "kitchen": "dev-alice",
        "parent": "dev",
        "allowed": False,
        "reasons": [
            "kitchen 'dev-alice' cannot merge: the latest runs of sales/daily failed "
            "(error tests or run failures)",
            "kitchen 'dev-alice' cannot merge: no succeeded run without failed error tests in it "
            "since it changed sales/daily; run them in the kitchen first",
        ],
    }
    merged = await registry.client.post("/v1/kitchens/dev-alice/merge")
    assert merged.status_code == 409
    assert merged.json()["detail"] == "; ".join(check.json()["reasons"])

    root = (await registry.client.get("/v1/kitchens/prod/merge")).json()
    assert root == {
        "kitchen": "prod",
        "parent": None,
        "allowed": False,
        "reasons": ["kitchen 'prod' has no parent to merge into"],
    }
    refused = await registry.client.post("/v1/kitchens/prod/merge")
    assert refused.json()["detail"] == root["reasons"][0]
    nobody = await registry.token("nobody", {"sales": ["run"]})
    assert (await registry.client.get("/v1/kitchens/prod/merge", headers=nobody)).status_code == 403
    spec = await registry.client.get("/openapi.json")
    assert "get" in spec.json()["paths"]["/v1/kitchens/{kitchen}/merge"]


async def test_a_kitchen_lists_the_recipe_versions_applied_into_it(registry):
    assert (await apply(registry, mesh_files())).status_code == 200
    for name in ("dev-alice", "dev-bob"):
        r = await registry.client.post("/v1/kitchens", json={"name": name, "from": "dev"})
        assert r.status_code == 201, r.text
    base = (await versions(registry, None))[DAILY]
    changed = (await apply(registry, sandbox_files(), kitchen="dev-alice")).json()
    version = changed["changes"][0]["new_version"]

    listed = await registry.client.get("/v1/kitchens/dev-alice/versions")
    assert listed.status_code == 200, listed.text
    [v] = listed.json()
    assert {k: x for k, x in v.items() if k != "applied_at"} == {
        "entity_id": f"{DAILY}@dev-alice",
        "domain": "sales",
        "recipe": "daily",
        "version": version,
        "base_version": base,
        "applied_by": "admin",
    }
    assert (await registry.client.get("/v1/kitchens/dev-bob/versions")).json() == []
    finance = await registry.token("finance-reader", {"finance": ["read"]})
    hidden = await registry.client.get("/v1/kitchens/dev-alice/versions", headers=finance)
    assert (hidden.status_code, hidden.json()) == (200, [])
    missing = await registry.client.get("/v1/kitchens/nowhere/versions")
    assert (missing.status_code, missing.json()) == (404, {"detail": "unknown kitchen 'nowhere'"})


async def test_apply_into_sandbox_dry_run_merge_and_delete(registry):
    assert (await apply(registry, mesh_files())).status_code == 200
    for name, parent in (("dev-alice", "dev"), ("hotfix", "prod"), ("tmp", "dev")):
        r = await registry.client.post("/v1/kitchens", json={"name": name, "from": parent})
        assert r.status_code == 201, r.text
    base = (await versions(registry, None))[DAILY]

    dry = await apply(registry, sandbox_files(), kitchen="dev-alice", dry_run=True)
    assert dry.status_code == 200, dry.text
    assert dry.json()["applied"] is False
    assert [(c["entity_id"], c["action"]) for c in dry.json()["changes"]] == [
        (f"{DAILY}@dev-alice", "create")
    ]
    assert await versions(registry, "dev-alice") == {}

    r = await apply(registry, sandbox_files(), kitchen="dev-alice")
    assert r.status_code == 200, r.text
    [change] = r.json()["changes"]
    sandboxed = change["new_version"]
    assert sandboxed != base
    assert await versions(registry, "dev-alice") == {f"{DAILY}@dev-alice": sandboxed}
    assert (await versions(registry, None))[DAILY] == base
    again = await apply(registry, sandbox_files(), kitchen="dev-alice", dry_run=True)
    assert again.json()["changes"] == []
    records = await changelog(
        registry, lambda ms: any(m.entity_id.endswith("@dev-alice") for m in ms)
    )
    [rec] = [m for m in records if m.entity_id == f"{DAILY}@dev-alice"]
    assert (rec.kitchen, rec.domain, rec.name, rec.version) == (
        "dev-alice",
        "sales",
        "daily",
        sandboxed,
    )
    assert rec.spec["params"]["min_rows"]["default"] == 2
    audit = (await registry.client.get("/v1/audit")).json()
    assert ("apply.kitchen", "dev-alice") in {(a["action"], a["target"]) for a in audit}

    # Deleting a sandbox tombstones its versions.
    assert (await apply(registry, sandbox_files(3), kitchen="tmp")).status_code == 200
    assert (await registry.client.delete("/v1/kitchens/tmp")).status_code == 204
    assert await versions(registry, "tmp") == {}
    records = await changelog(
        registry, lambda ms: any(m.entity_id == f"{DAILY}@tmp" and m.deleted for m in ms)
    )
    assert [m.deleted for m in records if m.entity_id == f"{DAILY}@tmp"] == [False, True]

    # Merging into a kitchen with a parent makes the versions that kitchen's.
    await passing_run(registry, "dev-alice", sandboxed)
    merged = await registry.client.post("/v1/kitchens/dev-alice/merge")
    assert merged.status_code == 200, merged.text
    assert merged.json()["promoted"] == [
        {
            "entity_id": f"{DAILY}@dev",
            "action": "create",
            "old_version": None,
            "new_version": sandboxed,
        }
    ]
    assert await versions(registry, "dev") == {f"{DAILY}@dev": sandboxed}
    assert await versions(registry, "dev-alice") == {}
    assert (await versions(registry, None))[DAILY] == base
    records = await changelog(registry, lambda ms: any(m.entity_id == f"{DAILY}@dev" for m in ms))
    assert [m.deleted for m in records if m.entity_id == f"{DAILY}@dev-alice"] == [False, True]
    assert [m.kitchen for m in records if m.entity_id == f"{DAILY}@dev"] == ["dev"]

    # Merging into a root kitchen replaces the base versions.
    r = await apply(registry, sandbox_files(4), kitchen="hotfix")
    fixed = r.json()["changes"][0]["new_version"]
    await passing_run(registry, "hotfix", fixed)
    merged = await registry.client.post("/v1/kitchens/hotfix/merge")
    assert merged.status_code == 200, merged.text
    assert [(c["entity_id"], c["old_version"]) for c in merged.json()["promoted"]] == [
        (DAILY, base)
    ]
    assert (await versions(registry, None))[DAILY] == fixed
    assert (await registry.client.get("/v1/domains/sales/recipes/daily")).json()["version"] == fixed
    assert await versions(registry, "hotfix") == {}


async def test_kitchen_apply_refusals_change_nothing(registry):
    assert (await apply(registry, mesh_files())).status_code == 200
    before = await versions(registry, None)

    unknown = await apply(registry, sandbox_files(), kitchen="nowhere")
    assert unknown.status_code == 422
    assert unknown.json()["errors"] == [
        "(request): kitchen: unknown kitchen 'nowhere' (kitchens: dev, dev-sam, prod)"
    ]
    domain = mesh_files("sales")["sales/domain.yaml"] + "\ndescription: changed\n"
    r = await apply(registry, {**sandbox_files(), "sales/domain.yaml": domain}, kitchen="dev-sam")
    assert r.status_code == 422
    assert r.json()["errors"] == [
        "sales/domain.yaml: only recipes can be applied into kitchen 'dev-sam';"
        " this domain.yaml differs from the base"
    ]
    broken = sandbox_files()
    daily = "sales/recipes/daily.yaml"
    broken[daily] = broken[daily].replace("needs: [ingest]", "needs: [lod]")
    r = await apply(registry, broken, kitchen="dev-sam")
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error.startswith(f"{daily}: steps.staging.needs[0]: unknown step 'lod'")
    assert await versions(registry, "dev-sam") == {}
    assert await versions(registry, None) == before
