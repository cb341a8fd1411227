"""A recipe applied only into a sandbox starts over REST there and runs (scheduler in-process)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.scheduler.integration.conftest import run_scheduler
from tests.scheduler.standins import standins

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

BASE = {
    "kitchens/prod.yaml": "kitchen: prod\n",
    "kitchens/dev.yaml": "kitchen: dev\nparent: prod\n",
    "lab/domain.yaml": "domain: lab\nowners: [lab-team]\n",
    "lab/recipes/daily.yaml": (
        "recipe: daily\nvariations: {prod: {kitchen: prod}}\nsteps: {load: {run: {kind: noop}}}\n"
    ),
}
TRIAL = {
    "lab/recipes/trial.yaml": (
        "recipe: trial\nsteps:\n  draft: {run: {kind: noop}}\n"
        "  check: {needs: [draft], run: {kind: noop}}\n"
    )
}


async def finished(registry, run_id: str) -> dict:
    """Poll the read model until the run has ended."""
    async with asyncio.timeout(30):
        while True:
            r = await registry.client.get(f"/v1/runs/{run_id}")
            if r.status_code == 200 and r.json()["status"] not in ("requested", "running"):
                return dict(r.json())
            await asyncio.sleep(0.05)


async def test_a_sandbox_only_recipe_starts_and_runs_there(
    registry, kafka_settings, servers
) -> None:
    assert (await registry.client.post("/v1/apply", json={"files": BASE})).status_code == 200
    for name, parent in (("dev-alice", "dev"), ("dev-alice-2", "dev-alice")):
        r = await registry.client.post("/v1/kitchens", json={"name": name, "from": parent})
        assert r.status_code == 201, r.text
    r = await registry.client.post("/v1/apply", json={"files": TRIAL, "kitchen": "dev-alice"})
    assert r.status_code == 200, r.text

    for kitchen, detail in (
        (None, "unknown recipe 'lab/trial'"),
        ("dev", "unknown recipe 'lab/trial' in kitchen 'dev', the kitchens above it or the base"),
    ):
        start = {"domain": "lab", "recipe": "trial", "kitchen": kitchen}
        missing = await registry.client.post("/v1/runs", json=start)
        assert (missing.status_code, missing.json()) == (404, {"detail": detail})

    async with (
        run_scheduler(kafka_settings, servers, f"t_{uuid.uuid4().hex[:12]}") as _,
        standins(kafka_settings) as seen,
    ):
        for kitchen in ("dev-alice", "dev-alice-2"):  # its own kitchen, and one below it
            start = {"domain": "lab", "recipe": "trial", "kitchen": kitchen}
            accepted = await registry.client.post("/v1/runs", json=start)
            assert accepted.status_code == 202, accepted.text
            run_id = accepted.json()["order_run_id"]
            run = await finished(registry, run_id)
            assert (run["status"], run["kitchen"]) == ("succeeded", kitchen), run
            assert {s["step"]: s["status"] for s in run["steps"]} == {
                "draft": "succeeded",
                "check": "succeeded",
            }
            ran = [m for m in seen if m.type == "ExecuteStep" and str(m.order_run_id) == run_id]
            assert {m.step for m in ran} == {"draft", "check"}
