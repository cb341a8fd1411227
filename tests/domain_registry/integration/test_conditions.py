"""Step conditions at the registry: refused at apply, skipped steps in the run read model."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from sous_contracts.common import RunStatus
from sous_contracts.runs import OrderRunFinished, OrderRunStarted
from sous_contracts.steps import StepSkipped
from tests.domain_registry.mesh import mesh_files
from tests.domain_registry.run_events import produce

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

DAILY = "sales/recipes/daily.yaml"
WHEN = 'when: "params.publish && steps.model.tests.warnings == 0"'


async def test_apply_refuses_a_condition_naming_an_unknown_step(registry) -> None:
    files = mesh_files()
    files[DAILY] = files[DAILY].replace(WHEN, 'when: "stepz.model.tests.warnings == 0"')
    r = await registry.client.post("/v1/apply", json={"files": files})
    assert r.status_code == 422, r.text
    assert (
        f"{DAILY}: steps.publish.when: unknown name 'stepz' (names: params, steps, event, run)"
        in r.text
    )


async def test_a_skipped_step_shows_in_the_run_with_its_reason(registry) -> None:
    run_id = uuid.uuid4()
    where = {"order_run_id": run_id, "domain": "sales", "recipe": "daily", "kitchen": "prod"}
    reason = "when 'params.publish' was false (params.publish = false)"
    await produce(
        registry.settings.kafka,
        [
            OrderRunStarted(**where, variation="prod", params={"publish": False}),
            StepSkipped(
                order_run_id=run_id,
                step_run_id=uuid.uuid4(),
                step="publish",
                reason=reason,
                when="params.publish",
                seen={"params.publish": False},
            ),
            OrderRunFinished(**where, variation="prod", status=RunStatus.SUCCEEDED),
        ],
    )
    async with asyncio.timeout(20):
        while True:
            r = await registry.client.get(f"/v1/runs/{run_id}")
            if r.status_code == 200 and r.json()["status"] == "succeeded" and r.json()["steps"]:
                break
            await asyncio.sleep(0.05)
    [step] = r.json()["steps"]
    assert (step["step"], step["attempt"], step["status"]) == ("publish", 0, "skipped")
    assert step["reason"] == reason
    assert step["outputs"] == {"when": "params.publish", "seen": {"params.publish": False}}
