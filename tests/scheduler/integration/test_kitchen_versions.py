"""A run in a sandbox uses the sandbox's version of a recipe; other kitchens use the base."""

from __future__ import annotations

import uuid

import pytest

from sous_contracts.common import RunStatus
from sous_contracts.registry import EntityKind
from sous_contracts.runs import StartOrderRun
from tests.scheduler.integration.conftest import publish_registry, recipe
from tests.scheduler.integration.test_runs import finished, run_events
from tests.scheduler.standins import entity, send, standins

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

NOOP = {"run": {"kind": "noop"}}


async def test_run_in_sandbox_uses_its_version_others_the_base(kafka_settings, scheduler) -> None:
    sandbox = entity(EntityKind.KITCHEN, "dev-alice", {"kitchen": "dev-alice", "parent": "dev"})
    child = entity(
        EntityKind.KITCHEN, "dev-alice-2", {"kitchen": "dev-alice-2", "parent": "dev-alice"}
    )
    base = recipe("sales", "daily", {"base_step": NOOP})
    mine = recipe("sales", "daily", {"sandbox_step": NOOP}).model_copy(
        update={"entity_id": "recipe:sales/daily@dev-alice", "kitchen": "dev-alice"}
    )
    await publish_registry(kafka_settings, scheduler, [sandbox, child, base, mine])

    async def steps_of(kitchen: str | None, variation: str | None = None) -> list[str]:
        run_id = uuid.uuid4()
        cmd = StartOrderRun(
            order_run_id=run_id,
            domain="sales",
            recipe="daily",
            kitchen=kitchen,
            variation=variation,
        )
        async with standins(kafka_settings) as seen:
            await send(kafka_settings, [cmd])
            events = await run_events(
                kafka_settings, lambda s: any(e.order_run_id == run_id for e in finished(s))
            )
        [end] = [e for e in finished(events) if e.order_run_id == run_id]
        assert end.status is RunStatus.SUCCEEDED, end.reason
        return sorted(
            {m.step for m in seen if m.type == "ExecuteStep" and m.order_run_id == run_id}
        )

    assert await steps_of("dev-alice") == ["sandbox_step"]
    assert await steps_of("dev-alice-2") == ["sandbox_step"]
    assert await steps_of("dev") == ["base_step"]
    assert await steps_of(None, "prod") == ["base_step"]
    versions = await scheduler.rt.pool.fetch("SELECT kitchen FROM runs ORDER BY created_at")
    assert [r["kitchen"] for r in versions] == ["dev-alice", "dev-alice-2", "dev", "prod"]
