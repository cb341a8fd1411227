"""Every endpoint of the REST API on real PostgreSQL and Kafka, auth failures included."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from sous_common.trust import Signer
from sous_contracts.runs import CancelOrderRun, DomainRunCompleted, StartOrderRun
from sous_contracts.topics import DOMAIN_EVENTS, ORDER_RUN_COMMANDS
from tests.domain_registry.conftest import read_topic
from tests.domain_registry.mesh import mesh_files

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture(scope="module")
async def reg(shared_registry):
    r = await shared_registry.client.post("/v1/apply", json={"files": mesh_files()})
    assert r.status_code == 200, r.text
    return shared_registry


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_openapi_and_health_are_served(reg):
    spec = (await reg.client.get("/openapi.json")).json()
    assert "/v1/apply" in spec["paths"]
    assert "/v1/runs/{run_id}/cancel" in spec["paths"]
    assert (await reg.client.get("/v1/health", headers={})).json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Authorization": ""}, "missing bearer token: send 'Authorization: Bearer <token>'"),
        (
            {"Authorization": "Basic abc"},
            "missing bearer token: send 'Authorization: Bearer <token>'",
        ),
        (bearer("nope"), "unknown or revoked token"),
    ],
)
async def test_401_says_what_is_wrong(reg, headers, message):
    r = await reg.client.get("/v1/domains", headers=headers)
    assert r.status_code == 401
    assert r.json() == {"detail": message}
    assert r.headers["www-authenticate"] == "Bearer"


async def test_queries_of_domains_recipes_variations_ingredients_datasets(reg):
    sales = await reg.token("sales-reader", {"sales": ["read"]})
    names = [d["name"] for d in (await reg.client.get("/v1/domains", headers=sales)).json()]
    assert names == ["sales"]
    all_names = [d["name"] for d in (await reg.client.get("/v1/domains")).json()]
    assert all_names == ["finance", "marketing", "payments", "platform", "sales"]
    d = (await reg.client.get("/v1/domains/sales", headers=sales)).json()
    assert d["spec"]["owners"] == ["sales-data-team"]
    recipes = (await reg.client.get("/v1/domains/sales/recipes", headers=sales)).json()
    assert [r["name"] for r in recipes] == ["daily"]
    daily = (await reg.client.get("/v1/domains/sales/recipes/daily", headers=sales)).json()
    assert daily["version"] == recipes[0]["version"]
    variations = await reg.client.get("/v1/domains/sales/recipes/daily/variations", headers=sales)
    assert sorted(variations.json()) == ["canary", "dev", "prod"]
    assert variations.json()["prod"]["schedule"]["cron"] == "0 2 * * *"
    ing = (await reg.client.get("/v1/domains/platform/ingredients")).json()
    assert sorted(i["name"] for i in ing) == ["publish_table@1", "publish_table@2"]
    ds = (await reg.client.get("/v1/domains/sales/datasets", headers=sales)).json()
    assert ds["publishes"] == ["published.sales_orders_daily"]
    resolved = await reg.client.get("/v1/kitchens/dev/resolved?domain=sales", headers=sales)
    assert resolved.json()["chain"] == ["prod", "dev"]
    assert resolved.json()["params"] == {
        "target_schema_suffix": "_dev",
        "source_file": "../../data/orders.csv",
    }
    assert resolved.json()["connections"]["warehouse"]["ref"] == "secret:warehouse"
    bad = await reg.client.get("/v1/kitchens/dev/resolved?domain=finance", headers=sales)
    assert bad.status_code == 403
    r = await reg.client.get("/v1/domains/finance", headers=sales)
    assert r.status_code == 403
    assert r.json()["detail"] == "principal 'sales-reader' lacks scope 'read' on domain 'finance'"
    assert (await reg.client.get("/v1/domains/nowhere")).status_code == 404
    assert (await reg.client.get("/v1/domains/sales/recipes/nope")).status_code == 404


async def test_start_and_cancel_runs_go_out_as_commands(reg):
    runner = await reg.token("sales-runner", {"sales": ["run", "read"]})
    r = await reg.client.post(
        "/v1/runs",
        json={
            "domain": "sales",
            "recipe": "daily",
            "variation": "dev",
            "params": {"day": "2026-11-24"},
        },
        headers=runner,
    )
    assert r.status_code == 202, r.text
    run_id = uuid.UUID(r.json()["order_run_id"])
    run = (await reg.client.get(f"/v1/runs/{run_id}", headers=runner)).json()
    assert (run["status"], run["kitchen"], run["requested_by"]) == (
        "requested",
        "dev",
        "sales-runner",
    )
    c = await reg.client.post(f"/v1/runs/{run_id}/cancel", json={"reason": "oops"}, headers=runner)
    assert c.status_code == 202
    topic = ORDER_RUN_COMMANDS.full_name(reg.settings.kafka.topic_prefix)
    got = await read_topic(
        reg.settings.kafka,
        topic,
        until=lambda ms: any(
            isinstance(m, CancelOrderRun) and m.order_run_id == run_id for m in ms
        ),
    )
    start = next(m for m in got if isinstance(m, StartOrderRun) and m.order_run_id == run_id)
    assert (start.domain, start.recipe, start.variation, start.kitchen) == (
        "sales",
        "daily",
        "dev",
        "dev",
    )
    assert start.params == {"day": "2026-11-24"}
    assert start.principal == "sales-runner"
    forbidden = await reg.client.post(
        "/v1/runs", json={"domain": "finance", "recipe": "revenue"}, headers=runner
    )
    assert forbidden.status_code == 403
    assert (
        forbidden.json()["detail"]
        == "principal 'sales-runner' lacks scope 'run' on domain 'finance'"
    )
    missing = await reg.client.post(
        "/v1/runs", json={"domain": "sales", "recipe": "daily", "variation": "nightly"}
    )
    assert missing.status_code == 404
    assert missing.json()["detail"] == "unknown variation 'nightly' (variations: canary, dev, prod)"
    assert (await reg.client.post(f"/v1/runs/{uuid.uuid4()}/cancel", json={})).status_code == 404
    keyed = {"domain": "sales", "recipe": "daily", "variation": "prod", "idempotency_key": "k1"}
    first = await reg.client.post("/v1/runs", json=keyed, headers=runner)
    second = await reg.client.post("/v1/runs", json=keyed, headers=runner)
    assert first.json() == second.json()
    keyed_id = uuid.UUID(first.json()["order_run_id"])
    got = await read_topic(
        reg.settings.kafka,
        topic,
        until=lambda ms: any(getattr(m, "order_run_id", None) == keyed_id for m in ms),
    )
    assert next(m for m in got if m.order_run_id == keyed_id).idempotency_key == "k1"
    async with reg.pool.acquire() as conn:
        commands = await conn.fetchval(
            "SELECT count(*) FROM audit WHERE action = 'run.start' AND detail->>'run' = $1",
            str(keyed_id),
        )
    assert commands == 1


async def test_a_domain_token_publishes_only_its_own_completion_events(reg):
    payments = await reg.token("payments-bot", {"payments": ["publish-events"]})
    r = await reg.client.post(
        "/v1/events/completion",
        json={
            "domain": "payments",
            "recipe": "settle",
            "kitchen": "prod",
            "params": {"day": "2026-11-24"},
        },
        headers=payments,
    )
    assert r.status_code == 202, r.text
    message_id = uuid.UUID(r.json()["message_id"])
    other = await reg.client.post(
        "/v1/events/completion", json={"domain": "sales", "recipe": "daily"}, headers=payments
    )
    assert other.status_code == 403
    assert other.json()["detail"] == (
        "principal 'payments-bot' lacks scope 'publish-events' on domain 'sales'"
    )
    topic = DOMAIN_EVENTS.full_name(reg.settings.kafka.topic_prefix)
    got = await read_topic(
        reg.settings.kafka, topic, until=lambda ms: any(m.message_id == message_id for m in ms)
    )
    event = next(m for m in got if m.message_id == message_id)
    assert isinstance(event, DomainRunCompleted)
    assert event.external is True
    assert (event.domain, event.recipe, event.kitchen, event.params) == (
        "payments",
        "settle",
        "prod",
        {"day": "2026-11-24"},
    )


async def test_tokens_and_audit_need_admin_and_audit_records_changes(reg):
    reader = await reg.token("reader", {"*": ["read"]})
    r = await reg.client.post(
        "/v1/tokens", json={"principal": "x", "scopes": {"*": ["admin"]}}, headers=reader
    )
    assert r.status_code == 403
    assert r.json()["detail"] == "principal 'reader' lacks scope 'admin' on every domain ('*')"
    assert (await reg.client.get("/v1/audit", headers=reader)).status_code == 403
    apply = await reg.client.post("/v1/apply", json={"files": mesh_files("sales")}, headers=reader)
    assert apply.status_code == 403
    entries = (await reg.client.get("/v1/audit?limit=500")).json()
    actions = {(e["principal"], e["action"]) for e in entries}
    assert ("admin", "apply") in actions
    assert ("admin", "grant") in actions
    assert all(e["at"] for e in entries)
    async with reg.pool.acquire() as conn:
        stored = await conn.fetch("SELECT token_hash FROM tokens")
    assert all(t["token_hash"].startswith("sha256:") for t in stored)


async def test_bundles_sent_on_the_command_topic_are_applied_once_or_refused(reg):
    from sous_contracts.registry import ApplySpecs
    from tests.domain_registry.integration.test_kitchens_and_runs import produce

    files = mesh_files("marketing")
    files["marketing/recipes/weekly.yaml"] = "recipe: weekly\nsteps:\n  s: {run: {kind: noop}}\n"
    ci_token = await reg.token("ci", {"marketing": ["admin"]})
    ci = Signer.generate("ci")
    published = await reg.client.post(
        "/v1/keys", json={"public_key": ci.public_key}, headers=ci_token
    )
    assert published.json() == {"principal": "ci", "keys": [ci.public_key]}
    good = ApplySpecs(bundle_id="b1", files=files)
    bad_files = {**files, "marketing/recipes/weekly.yaml": "recipe: weekly\nsteps: {}\n"}
    bad = ApplySpecs(bundle_id="b2", files=bad_files, principal="ci")
    await produce(reg.settings.kafka, [good, good, bad], signer=ci)

    async def refused() -> list:
        entries = (await reg.client.get("/v1/audit?limit=1000")).json()
        return [e for e in entries if e["action"] == "apply.refused" and e["target"] == "b2"]

    async with asyncio.timeout(20):
        while not await refused():
            await asyncio.sleep(0.05)
    weekly = await reg.client.get("/v1/domains/marketing/recipes/weekly")
    assert weekly.status_code == 200
    versions = await reg.client.get("/v1/domains/marketing/recipes/weekly/versions")
    assert len(versions.json()) == 1
    (entry,) = await refused()
    assert entry["principal"] == "ci"
    assert entry["detail"]["errors"] == [
        "marketing/recipes/weekly.yaml: steps: Dictionary should have at least 1 item after "
        "validation, not 0"
    ]
    applies = [
        e
        for e in (await reg.client.get("/v1/audit?limit=1000")).json()
        if e["action"] == "apply" and e["principal"] == "ci"
    ]
    assert len(applies) == 1

    # A bundle for a kitchen makes versions of that kitchen.
    into = ApplySpecs(bundle_id="b3", files=files, principal="ci", kitchen="dev-sam")
    await produce(reg.settings.kafka, [into], signer=ci)
    async with asyncio.timeout(20):
        while not [
            e
            for e in (await reg.client.get("/v1/audit?limit=1000")).json()
            if e["action"] == "apply.kitchen" and e["principal"] == "ci"
        ]:
            await asyncio.sleep(0.05)
    async with reg.pool.acquire() as conn:
        scoped = await conn.fetch("SELECT entity_id FROM entities WHERE kitchen = 'dev-sam'")
        await conn.execute("DELETE FROM entities WHERE kitchen = 'dev-sam'")
    assert {r["entity_id"] for r in scoped} == {
        "recipe:marketing/weekly@dev-sam",
        *(f"recipe:marketing/{p.split('/')[-1][:-5]}@dev-sam" for p in files if "/recipes/" in p),
    }


async def test_bundles_need_a_signature_of_a_principal_holding_the_scope(reg):
    from sous_contracts.deadletter import DeadLetter
    from sous_contracts.registry import ApplySpecs
    from sous_contracts.topics import DEAD_LETTERS
    from tests.domain_registry.integration.test_kitchens_and_runs import produce

    ops_token = await reg.token("ops", {"marketing": ["admin"]})
    ops = Signer.generate("ops")
    r = await reg.client.post("/v1/keys", json={"public_key": ops.public_key}, headers=ops_token)
    assert r.status_code == 200, r.text
    bundle = mesh_files("marketing")
    unsigned = ApplySpecs(bundle_id="u1", files=bundle)
    beyond = ApplySpecs(bundle_id="u2", files=mesh_files("sales"))
    posing = ApplySpecs(bundle_id="u3", files=bundle, principal="admin")
    await produce(reg.settings.kafka, [unsigned])
    await produce(reg.settings.kafka, [beyond, posing], signer=ops)
    why = {
        "u1": "unsigned",
        "u2": "principal 'ops' lacks scope 'admin' on domain 'sales'",
        "u3": "principal 'ops' signed it but it names 'admin'",
    }

    def letters(seen: list) -> dict[str, DeadLetter]:
        found = {}
        for m in seen:
            for bundle_id in why:
                if isinstance(m, DeadLetter) and f'"bundle_id":"{bundle_id}"' in m.payload:
                    found[bundle_id] = m
        return found

    seen = await read_topic(
        reg.settings.kafka,
        DEAD_LETTERS.full_name(reg.settings.kafka.topic_prefix),
        until=lambda s: len(letters(s)) == len(why),
    )
    for bundle_id, letter in letters(seen).items():
        assert letter.error_kind == "unauthorized"
        assert why[bundle_id] in letter.reason, letter.reason
    audited = {e["target"] for e in (await reg.client.get("/v1/audit?limit=1000")).json()}
    assert audited.isdisjoint(why)

    # A withdrawn key signs nothing any more; another principal's key is not yours to touch.
    other = await reg.token("other", {"marketing": ["read"]})
    r = await reg.client.post(
        "/v1/keys/remove", json={"public_key": ops.public_key, "principal": "ops"}, headers=other
    )
    assert r.status_code == 403
    r = await reg.client.post(
        "/v1/keys/remove", json={"public_key": ops.public_key}, headers=ops_token
    )
    assert r.json() == {"principal": "ops", "keys": []}
    bad_key = await reg.client.post("/v1/keys", json={"public_key": "abc"}, headers=ops_token)
    assert bad_key.status_code == 422
    assert bad_key.json()["detail"][0]["loc"] == ["body", "public_key"]
