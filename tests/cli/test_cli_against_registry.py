"""`sous runs/status/logs/graph` and `sous kitchen list/versions` against a served registry."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from sous_contracts.steps import StepFinished
from tests.domain_registry.conftest import admin
from tests.domain_registry.integration.test_cli import served, sous, sous_process
from tests.domain_registry.integration.test_kitchens_and_runs import produce, run_events
from tests.domain_registry.mesh import MESH

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
__all__ = ["served"]


async def wait_until_finished(url: str, run_id: uuid.UUID) -> dict:
    """Poll the registry until the run, its step and its test result have arrived."""
    async with httpx.AsyncClient(base_url=url, headers=admin()) as client, asyncio.timeout(20):
        while True:
            r = await client.get(f"/v1/runs/{run_id}")
            body = r.json() if r.status_code == 200 else {}
            if body.get("status") == "failed" and body["steps"] and body["test_results"]:
                return body
            await asyncio.sleep(0.05)


async def test_cli_reads_runs_kitchens_and_graphs(served, kafka_settings, tmp_path: Path):
    code, out = await sous(served, "apply", str(MESH))
    assert code == 0, out

    code, out = await sous(served, "graph")
    assert code == 0, out
    assert "sales/daily → finance/revenue  (all)" in out
    assert "payments/settle → finance/revenue  (all)" in out
    assert "finance/revenue → marketing/dashboard  (on)" in out

    svg = tmp_path / "daily.svg"
    code, out = await sous(served, "graph", "sales/daily", "--svg", str(svg))
    assert code == 0, out
    assert "staging ← ingest" in out
    texts = {t.text for t in ET.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}text")}
    assert {"ingest", "staging", "model"} <= texts
    code, out = await sous(served, "graph", "sales/daily", "--json")
    assert {"source": "ingest", "target": "staging", "label": ""} in json.loads(out)["edges"]
    code, out = await sous(served, "graph", "sales/nope")
    assert (code, "unknown" in out) == (1, True), out
    code, out = await sous(served, "graph", "sales")
    assert code == 2, out

    code, out = await sous(served, "kitchen", "list")
    assert code == 0, out
    names = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
    assert sorted(names) == ["dev", "dev-sam", "prod"], out
    code, out = await sous(served, "kitchen", "list", "--json")
    assert {k["name"] for k in json.loads(out)} >= {"dev", "prod"}

    run_id = uuid.uuid4()
    events = [
        e.model_copy(update={"log_tail": "loading…\nboom [red]"})
        if isinstance(e, StepFinished)
        else e
        for e in run_events(run_id, "dev", error_failed=1)
    ]
    await produce(kafka_settings, events)
    await wait_until_finished(served, run_id)

    code, out = await sous(served, "runs", "--json")
    assert code == 0, out
    assert [r["order_run_id"] for r in json.loads(out)] == [str(run_id)]
    code, out = await sous(served, "runs", "--domain", "sales", "--kitchen", "dev")
    assert code == 0, out
    row = next(line for line in out.splitlines() if str(run_id) in line)
    assert "sales/daily" in row
    assert "failed" in row
    code, out = await sous(served, "runs", "--kitchen", "prod")
    assert (code, out.strip()) == (0, "no runs")

    code, out = await sous(served, "status", str(run_id))
    assert code == 1, out
    assert "enough_rows" in out
    assert "8 >= 1000000 is false" in out
    code, out = await sous(served, "status", str(run_id), "--json")
    assert json.loads(out)["steps"][0]["log_tail"] == "loading…\nboom [red]"
    code, out = await sous(served, "status", str(uuid.uuid4()))
    assert (code, "unknown run" in out) == (1, True), out
    code, out = await sous(served, "status", "not-a-run")
    assert code == 2, out

    code, out = await sous(served, "logs", str(run_id))
    assert code == 0, out
    assert "model · attempt 1 · succeeded" in out
    assert "loading…\nboom [red]" in out
    code, out = await sous(served, "logs", str(run_id), "--step", "other")
    assert code == 1, out

    code, out = await sous("http://127.0.0.1:9", "runs")
    assert (code, "cannot reach the registry" in out) == (2, True), out


async def test_kitchen_versions_lists_what_a_sandbox_changed(served, tmp_path: Path):
    code, out = await sous(served, "apply", str(MESH))
    assert code == 0, out
    code, out = await sous(served, "kitchen", "create", "dev-alice", "--from", "dev")
    assert code == 0, out
    sales = tmp_path / "sales"
    shutil.copytree(MESH / "sales", sales)
    daily = sales / "recipes" / "daily.yaml"
    changed = daily.read_text().replace(
        "{type: integer, default: 1,", "{type: integer, default: 7,"
    )
    assert changed != daily.read_text()
    daily.write_text(changed)
    code, out = await sous(served, "apply", str(sales), "--kitchen", "dev-alice")
    assert (code, "recipe:sales/daily@dev-alice" in out) == (0, True), out
    async with httpx.AsyncClient(base_url=served, headers=admin()) as client:
        base = (await client.get("/v1/domains/sales/recipes/daily")).json()["version"]

    code, out = await sous(served, "kitchen", "versions", "dev-alice", "--json")
    assert code == 0, out
    [listed] = json.loads(out)
    assert (listed["domain"], listed["recipe"], listed["base_version"]) == ("sales", "daily", base)
    assert listed["version"] != base
    assert listed["applied_by"] == "admin"

    code, out = await sous(served, "kitchen", "versions", "dev-alice")
    assert code == 0, out
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines()[3:-1]]
    assert [r[:3] for r in rows] == [["sales/daily", listed["version"][:19], base[:19]]], out
    code, out = await sous(served, "kitchen", "versions", "dev")
    assert (code, out.strip()) == (0, "kitchen dev has no recipe versions of its own")

    code, out = await sous_process(served, "kitchen", "versions", "nowhere")
    assert (code, out.strip()) == (1, "404 unknown kitchen 'nowhere'")
    code, out = await sous_process("http://127.0.0.1:9", "kitchen", "versions", "dev-alice")
    assert code == 2, out
    assert "cannot reach the registry at http://127.0.0.1:9" in out
    assert "Traceback" not in out
