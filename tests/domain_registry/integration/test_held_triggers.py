"""A trigger held until monitors pass, in the run read model: REST and `sous status`."""

from __future__ import annotations

import uuid

import httpx
import pytest

from sous_contracts.runs import OrderRunQueued, TriggerHeld
from tests.domain_registry.conftest import ADMIN_TOKEN
from tests.domain_registry.integration.test_cli import served, sous
from tests.domain_registry.integration.test_datasets import until
from tests.domain_registry.mesh import mesh_files
from tests.domain_registry.run_events import produce

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
__all__ = ["served"]


async def test_a_held_trigger_is_listed_with_its_reason_until_its_run_starts(
    served, kafka_settings
):
    run_id = uuid.uuid4()
    held = TriggerHeld(
        producer="scheduler",
        order_run_id=run_id,
        trigger_id="marketing/dashboard#0",
        domain="marketing",
        recipe="dashboard",
        kitchen="prod",
        upstream_order_run_id=uuid.uuid4(),
        datasets=["finance.revenue"],
        reason="monitor finance/revenue on finance.revenue failed (one_row_per_day)",
    )
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=served, headers=headers) as client:
        assert (await client.post("/v1/apply", json={"files": mesh_files()})).status_code == 200
        await produce(kafka_settings, [held])
        run = await until(client, f"/v1/runs/{run_id}", lambda r: r["status"] == "held")
        assert run["reason"] == (
            "trigger marketing/dashboard#0 held: monitor finance/revenue on finance.revenue"
            " failed (one_row_per_day)"
        )
        code, out = await sous(served, "status", str(run_id))
        assert code == 5, out  # not over: it starts once the monitors pass
        assert "held" in out
        assert "failed (one_row_per_day)" in out

        queued = OrderRunQueued(
            producer="scheduler",
            order_run_id=run_id,
            domain="marketing",
            recipe="dashboard",
            variation="prod",
            kitchen="prod",
        )
        await produce(kafka_settings, [queued])
        run = await until(client, f"/v1/runs/{run_id}", lambda r: r["status"] == "queued")
        assert run["reason"] is None
