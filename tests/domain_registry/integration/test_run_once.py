"""Run-once keys and expired joins through the REST API, with the scheduler on real servers."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from sous_contracts.common import RunStatus
from sous_contracts.runs import (
    CANCEL_REASON_MAX,
    IDEMPOTENCY_KEY_MAX,
    DomainRunCompleted,
    StartOrderRun,
)
from tests.domain_registry.mesh import mesh_files
from tests.scheduler.integration.conftest import run_scheduler
from tests.scheduler.standins import send

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

REVENUE = "finance/recipes/revenue.yaml"


@pytest.fixture
async def mesh(registry, kafka_settings, servers):
    """The example mesh applied, with finance's join window shortened, and a scheduler."""
    files = mesh_files()
    files[REVENUE] = files[REVENUE].replace("within: 6h", "within: 1s")
    r = await registry.client.post("/v1/apply", json={"files": files})
    assert r.status_code == 200, r.text
    schema = f"t_{uuid.uuid4().hex[:12]}"
    async with run_scheduler(kafka_settings, servers, schema, cron_poll_s=0.1) as scheduler:
        async with asyncio.timeout(20):
            while not await scheduler.rt.pool.fetchval(
                "SELECT count(*) FROM registry WHERE entity_id = 'recipe:finance/revenue'"
            ):
                await asyncio.sleep(0.05)
        yield scheduler


async def run_row(registry, run_id, status: str) -> dict:
    """Poll the REST API until the run has the status (a read model fed from Kafka)."""
    async with asyncio.timeout(30):
        while True:
            r = await registry.client.get(f"/v1/runs/{run_id}")
            if r.status_code == 200 and r.json()["status"] == status:
                return dict(r.json())
            await asyncio.sleep(0.05)


async def commands_sent(registry, target: str) -> list[str]:
    """Runs the REST API queued a StartOrderRun for (audited with the command, in order)."""
    rows = await registry.pool.fetch(
        "SELECT detail->>'run' AS run FROM audit WHERE action = 'run.start' AND target = $1"
        " ORDER BY id",
        target,
    )
    return [r["run"] for r in rows]


def start_body(key: str) -> dict:
    return {
        "domain": "sales",
        "recipe": "daily",
        "variation": "prod",
        "params": {"day": "2026-11-24"},
        "idempotency_key": key,
    }


async def test_rest_answers_a_repeated_key_with_the_first_run(registry, mesh) -> None:
    # A client on Kafka starts a run with the key first.
    first = StartOrderRun(
        order_run_id=uuid.uuid4(),
        domain="sales",
        recipe="daily",
        variation="prod",
        params={"day": "2026-11-24"},
        idempotency_key="nov-24",
    )
    await send(mesh.rt.kafka, [first])
    await run_row(registry, first.order_run_id, "running")

    # REST does not know the key yet: its command is answered by the scheduler.
    r = await registry.client.post("/v1/runs", json=start_body("nov-24"))
    assert r.status_code == 202, r.text
    asked = r.json()["order_run_id"]
    repeat = await run_row(registry, asked, "deduplicated")
    assert repeat["duplicate_of"] == str(first.order_run_id)
    assert repeat["reason"] == f"idempotency key 'nov-24' already started run {first.order_run_id}"

    # From now on REST answers with the first run, and sends nothing.
    again = await registry.client.post("/v1/runs", json=start_body("nov-24"))
    assert again.json()["order_run_id"] == str(first.order_run_id)

    # The same key in another recipe is another run.
    elsewhere = {**start_body("nov-24"), "domain": "payments", "recipe": "settle"}
    settle = await registry.client.post("/v1/runs", json=elsewhere)
    assert settle.json()["order_run_id"] not in (asked, str(first.order_run_id))
    await run_row(registry, settle.json()["order_run_id"], "running")
    assert await mesh.rt.pool.fetchval("SELECT count(*) FROM runs") == 2
    assert await commands_sent(registry, "sales/daily") == [asked], "the repeat sent none"


async def test_rest_repeats_return_the_same_run_and_send_one_command(registry) -> None:
    r = await registry.client.post("/v1/apply", json={"files": mesh_files()})
    assert r.status_code == 200, r.text
    one = await registry.client.post("/v1/runs", json=start_body("k-1"))
    two = await registry.client.post("/v1/runs", json=start_body("k-1"))
    assert one.json() == two.json()
    other = await registry.client.post("/v1/runs", json=start_body("k-2"))
    assert other.json() != one.json()
    # A command is queued in the outbox in the transaction the answer waited for.
    assert await commands_sent(registry, "sales/daily") == [
        one.json()["order_run_id"],
        other.json()["order_run_id"],
    ]


async def test_rest_refuses_text_over_the_limits_naming_the_field(registry) -> None:
    r = await registry.client.post("/v1/apply", json={"files": mesh_files()})
    assert r.status_code == 200, r.text
    too_long = await registry.client.post(
        "/v1/runs", json=start_body("k" * (IDEMPOTENCY_KEY_MAX + 1))
    )
    assert too_long.status_code == 422, too_long.text
    [problem] = too_long.json()["detail"]
    assert problem["loc"] == ["body", "idempotency_key"]
    assert f"at most {IDEMPOTENCY_KEY_MAX} characters" in problem["msg"]
    assert await commands_sent(registry, "sales/daily") == [], "nothing was queued"
    longest = await registry.client.post("/v1/runs", json=start_body("k" * IDEMPOTENCY_KEY_MAX))
    assert longest.status_code == 202, longest.text
    run_id = longest.json()["order_run_id"]
    cancel = await registry.client.post(
        f"/v1/runs/{run_id}/cancel", json={"reason": "r" * (CANCEL_REASON_MAX + 1)}
    )
    assert cancel.status_code == 422, cancel.text
    [problem] = cancel.json()["detail"]
    assert problem["loc"] == ["body", "reason"]
    assert f"at most {CANCEL_REASON_MAX} characters" in problem["msg"]


async def test_an_expired_join_shows_in_the_runs(registry, mesh) -> None:
    sales = DomainRunCompleted(
        domain="sales",
        recipe="daily",
        variation="prod",
        kitchen="prod",
        status=RunStatus.SUCCEEDED,
        order_run_id=uuid.uuid4(),
        params={"day": "2026-11-25"},
    )
    await send(mesh.rt.kafka, [sales])
    async with asyncio.timeout(30):
        while not (
            found := (await registry.client.get("/v1/runs", params={"domain": "finance"})).json()
        ):
            await asyncio.sleep(0.05)
    [row] = found
    assert row["status"] == "join-expired"
    assert row["params"] == {"key": "2026-11-25"}
    assert row["reason"].startswith(
        "join finance/revenue#orders_and_settlements for key '2026-11-25' expired at "
    )
    assert row["reason"].endswith(
        f"with 1 of 2 needed: arrived sales/daily (run {sales.order_run_id});"
        " missing payments/settle"
    )
