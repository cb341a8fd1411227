"""Run lineage and impact on real servers: a trigger chain payments → finance → marketing run
by the scheduler in-process, read back through the registry's REST API."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from sous_contracts.common import Severity, TestStatus
from sous_contracts.tests import TestResult
from tests.domain_registry.run_events import produce
from tests.scheduler.integration.conftest import run_scheduler
from tests.scheduler.standins import standins

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _recipe(name: str, after: str | None = None) -> str:
    spec: dict = {
        "recipe": name,
        "variations": {"prod": {"kitchen": "prod"}},
        "steps": {"load": {"run": {"kind": "noop"}, "outputs": [f"mesh.{name}"]}},
    }
    if after is not None:
        domain, recipe = after.split("/")
        spec["triggers"] = [
            {
                "name": f"after-{domain}",
                "on": {"domain": domain, "recipe": recipe},
                "variation": "prod",
            }
        ]
    return json.dumps(spec)


MESH = {
    "kitchens/prod.yaml": "kitchen: prod\n",
    **{f"{d}/domain.yaml": f"domain: {d}\n" for d in ("payments", "finance", "marketing", "sales")},
    "payments/recipes/settle.yaml": _recipe("settle"),
    "finance/recipes/revenue.yaml": _recipe("revenue", "payments/settle"),
    "marketing/recipes/campaign.yaml": _recipe("campaign", "finance/revenue"),
    "sales/recipes/daily.yaml": _recipe("daily"),  # unrelated: the control
}


async def _ended(registry, domain: str) -> dict:
    """Poll until the domain has a run that ended; return it."""
    async with asyncio.timeout(30):
        while True:
            r = await registry.client.get("/v1/runs", params={"domain": domain})
            ended = [run for run in r.json() if run["status"] == "succeeded"]
            if ended:
                return dict(ended[0])
            await asyncio.sleep(0.05)


async def _start(registry, domain: str, recipe: str) -> str:
    r = await registry.client.post(
        "/v1/runs", json={"domain": domain, "recipe": recipe, "variation": "prod"}
    )
    assert r.status_code == 202, r.text
    return str(r.json()["order_run_id"])


async def _warned(registry, kafka_settings, payments: dict) -> str:
    """Report a warned test of the payments run, as the test-runner would; return its id."""
    warning = TestResult(
        order_run_id=uuid.UUID(payments["order_run_id"]),
        step_run_id=uuid.uuid4(),
        suite_id=uuid.uuid4(),
        step="load",
        test="late_rows",
        kind="sql",
        severity=Severity.WARNING,
        status=TestStatus.WARNING,
        domain="payments",
        recipe="settle",
        kitchen="prod",
        message="12 rows arrived late",
    )
    await produce(kafka_settings, [warning])
    async with asyncio.timeout(20):
        while True:
            run = (await registry.client.get(f"/v1/runs/{payments['order_run_id']}")).json()
            if run["test_results"]:
                assert run["test_results"][0]["result_id"] == str(warning.message_id)
                return str(warning.message_id)
            await asyncio.sleep(0.05)


async def test_lineage_and_impact_of_a_trigger_chain(registry, kafka_settings, servers) -> None:
    r = await registry.client.post("/v1/apply", json={"files": MESH})
    assert r.status_code == 200, r.text
    async with (
        run_scheduler(kafka_settings, servers, f"t_{uuid.uuid4().hex[:12]}"),
        standins(kafka_settings),
    ):
        payments_id = await _start(registry, "payments", "settle")
        control_id = await _start(registry, "sales", "daily")
        marketing = await _ended(registry, "marketing")
        finance = await _ended(registry, "finance")
        payments = await _ended(registry, "payments")
        control = await _ended(registry, "sales")
    assert (payments["order_run_id"], control["order_run_id"]) == (payments_id, control_id)
    finance_id, marketing_id = finance["order_run_id"], marketing["order_run_id"]

    # Why marketing started, and everything upstream of it.
    r = await registry.client.get(f"/v1/runs/{marketing_id}/lineage", params={"direction": "up"})
    assert r.status_code == 200, r.text
    up = r.json()
    nodes = {n["order_run_id"]: n for n in up["nodes"]}
    assert set(nodes) == {marketing_id, finance_id, payments_id}
    assert {(e["upstream"], e["downstream"], e["trigger"]) for e in up["edges"]} == {
        (payments_id, finance_id, "finance/revenue#after-payments"),
        (finance_id, marketing_id, "marketing/campaign#after-finance"),
    }
    assert nodes[marketing_id]["cause"]["kind"] == "trigger"
    assert nodes[marketing_id]["cause"]["upstream_order_run_ids"] == [finance_id]
    assert nodes[marketing_id]["cause"]["trigger"] == "marketing/campaign#after-finance"
    # A command-started run names the principal the scheduler verified.
    assert nodes[payments_id]["cause"] == {**nodes[payments_id]["cause"], "kind": "command"}
    assert nodes[payments_id]["cause"]["principal"] == "admin"
    assert (nodes[payments_id]["status"], nodes[payments_id]["depth"]) == ("succeeded", 2)
    assert up["elided"] == 0
    r = await registry.client.get(
        f"/v1/runs/{marketing_id}/lineage", params={"direction": "up", "depth": 1}
    )
    assert {n["order_run_id"] for n in r.json()["nodes"]} == {marketing_id, finance_id}
    r = await registry.client.get(f"/v1/runs/{payments_id}/lineage", params={"direction": "down"})
    assert {n["order_run_id"] for n in r.json()["nodes"]} == {payments_id, finance_id, marketing_id}

    # Impact of the warned test in payments: every downstream run, nothing unrelated.
    result_id = await _warned(registry, kafka_settings, payments)
    r = await registry.client.get(f"/v1/impact/test-results/{result_id}")
    assert r.status_code == 200, r.text
    impact = r.json()
    assert [x["order_run_id"] for x in impact["runs"]] == [finance_id, marketing_id]
    assert impact["owners"] == ["finance", "marketing"]
    assert impact["source"]["test"] == "late_rows"
    # What the warned data may have reached: what payments wrote, and everything below it.
    written = {(d["uri"], d["order_run_id"], d["step"]) for d in impact["datasets"]}
    assert written == {
        ("mesh.settle", payments_id, "load"),
        ("mesh.revenue", finance_id, "load"),
        ("mesh.campaign", marketing_id, "load"),
    }
    assert control_id not in json.dumps(impact)
    r = await registry.client.get(f"/v1/impact/runs/{control_id}")
    assert (r.status_code, r.json()["runs"]) == (200, [])

    # A reader of marketing and payments only: finance is elided, not leaked.
    partial = await registry.token("mkt", {"marketing": ["read"], "payments": ["read"]})
    r = await registry.client.get(f"/v1/runs/{marketing_id}/lineage", headers=partial)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert {n["order_run_id"] for n in seen["nodes"]} == {marketing_id, payments_id}
    assert seen["edges"] == []
    assert seen["elided"] == 1
    assert "may not read" in seen["note"]
    assert finance_id not in json.dumps(seen)
    assert "finance" not in {n["domain"] for n in seen["nodes"]}
    other = await registry.token("fin", {"finance": ["read"]})
    r = await registry.client.get(f"/v1/runs/{marketing_id}/lineage", headers=other)
    assert r.status_code == 403, r.text
    r = await registry.client.get(f"/v1/impact/test-results/{result_id}", headers=other)
    assert r.status_code == 403, r.text


def _joined(name: str, after: list[str]) -> str:
    """A recipe joining one completion of each upstream (no key: any one of each)."""
    spec = json.loads(_recipe(name))
    spec["triggers"] = [
        {
            "name": "both",
            "all": [dict(zip(("domain", "recipe"), a.split("/"), strict=True)) for a in after],
            "within": "1h",
            "variation": "prod",
        }
    ]
    return json.dumps(spec)


JOIN_MESH = {
    "kitchens/prod.yaml": "kitchen: prod\n",
    **{
        f"{d}/domain.yaml": f"domain: {d}\n"
        for d in ("payments", "finance", "marketing", "sales", "ops")
    },
    "sales/recipes/ingest.yaml": _recipe("ingest"),
    "sales/recipes/daily.yaml": _recipe("daily", "sales/ingest"),
    "payments/recipes/settle.yaml": _recipe("settle"),
    "finance/recipes/revenue.yaml": _joined("revenue", ["sales/daily", "payments/settle"]),
    "marketing/recipes/campaign.yaml": _recipe("campaign", "finance/revenue"),
    "ops/recipes/vacuum.yaml": _recipe("vacuum"),  # unrelated, started beside the chain
}


async def _ended_run(registry, domain: str, recipe: str) -> str:
    """Poll until a run of domain/recipe succeeded; return its id."""
    async with asyncio.timeout(30):
        while True:
            r = await registry.client.get("/v1/runs", params={"domain": domain})
            done = [x for x in r.json() if x["recipe"] == recipe and x["status"] == "succeeded"]
            if done:
                return str(done[0]["order_run_id"])
            await asyncio.sleep(0.05)


async def test_lineage_of_marketing_lists_its_four_upstream_runs_through_a_join(
    registry, kafka_settings, servers
) -> None:
    r = await registry.client.post("/v1/apply", json={"files": JOIN_MESH})
    assert r.status_code == 200, r.text
    async with (
        run_scheduler(kafka_settings, servers, f"t_{uuid.uuid4().hex[:12]}"),
        standins(kafka_settings),
    ):
        ingest = await _start(registry, "sales", "ingest")
        settle = await _start(registry, "payments", "settle")
        vacuum = await _start(registry, "ops", "vacuum")
        marketing = await _ended_run(registry, "marketing", "campaign")
        finance = await _ended_run(registry, "finance", "revenue")
        daily = await _ended_run(registry, "sales", "daily")
        assert await _ended_run(registry, "ops", "vacuum") == vacuum

    r = await registry.client.get(f"/v1/runs/{marketing}/lineage", params={"direction": "up"})
    assert r.status_code == 200, r.text
    up = r.json()
    nodes = {n["order_run_id"]: n for n in up["nodes"]}
    assert set(nodes) - {marketing} == {finance, daily, ingest, settle}
    assert {(e["upstream"], e["downstream"]) for e in up["edges"]} == {
        (ingest, daily),
        (daily, finance),
        (settle, finance),
        (finance, marketing),
    }
    assert {n["status"] for n in nodes.values()} == {"succeeded"}
    assert {nodes[x]["depth"] for x in (ingest,)} == {3}
    assert set(nodes[finance]["cause"]["upstream_order_run_ids"]) == {daily, settle}

    # A warning in payments reaches finance and marketing; the sales runs beside it on the
    # join and the unrelated ops run are not downstream of it.
    payments = (await registry.client.get(f"/v1/runs/{settle}")).json()
    result_id = await _warned(registry, kafka_settings, payments)
    impact = (await registry.client.get(f"/v1/impact/test-results/{result_id}")).json()
    assert [x["order_run_id"] for x in impact["runs"]] == [finance, marketing]
    assert {(d["uri"], d["order_run_id"]) for d in impact["datasets"]} == {
        ("mesh.settle", settle),
        ("mesh.revenue", finance),
        ("mesh.campaign", marketing),
    }
    assert {n["order_run_id"] for n in impact["nodes"]} == {settle, finance, marketing}
    assert {(e["upstream"], e["downstream"]) for e in impact["edges"]} == {
        (settle, finance),
        (finance, marketing),
    }
    assert impact["owners"] == ["finance", "marketing"]
    # Only finance's own cause names the sales run it joined with; the ops run, never.
    assert vacuum not in json.dumps(impact)
