"""The dataset view: writers, readers and latest health from finished runs; REST and CLI."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from sous_contracts.common import RunStatus, TestStatus, TestSummary
from sous_contracts.runs import OrderRunFinished, StepDatasets
from sous_contracts.tests import TestSuiteFinished
from tests.domain_registry.conftest import ADMIN_TOKEN
from tests.domain_registry.integration.test_cli import served, sous
from tests.domain_registry.mesh import mesh_files
from tests.domain_registry.run_events import produce

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
__all__ = ["served"]  # the fixture, shared with the CLI tests

T0 = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def finished(
    domain: str, recipe: str, steps: list[StepDatasets], *, minutes: int, failed: bool = False
) -> OrderRunFinished:
    """An OrderRunFinished as the scheduler publishes it, with its datasets per step."""
    return OrderRunFinished(
        order_run_id=uuid.uuid4(),
        domain=domain,
        recipe=recipe,
        variation="prod",
        kitchen="prod",
        status=RunStatus.FAILED if failed else RunStatus.SUCCEEDED,
        occurred_at=T0 + timedelta(minutes=minutes),
        datasets=steps,
    )


def step(name: str, inputs: list[str], outputs: list[str], **tests: int) -> StepDatasets:
    status = "failed" if tests.get("failed") else "succeeded"
    return StepDatasets(
        step=name, status=status, inputs=inputs, outputs=outputs, tests=TestSummary(**tests)
    )


CHAIN = [
    finished(
        "sales",
        "daily",
        [
            step("ingest", ["file:orders.csv"], ["sales.raw_orders", "s3://lake/raw/orders.csv"]),
            step("model", ["sales.stg_orders"], ["sales.orders_daily"], passed=2),
        ],
        minutes=0,
    ),
    finished(
        "payments", "settle", [step("settle", [], ["payments.settlements"], warnings=1)], minutes=1
    ),
    finished(
        "finance",
        "revenue",
        [
            step(
                "revenue",
                ["sales.orders_daily", "payments.settlements"],
                ["finance.revenue"],
                passed=2,
            )
        ],
        minutes=2,
    ),
    finished(
        "marketing",
        "dashboard",
        [step("refresh", ["finance.revenue"], ["marketing.revenue_dashboard"], warnings=1)],
        minutes=3,
    ),
]
BROKEN = finished(
    "finance",
    "revenue",
    [step("revenue", ["sales.orders_daily"], ["finance.revenue"], passed=1, failed=1)],
    minutes=10,
    failed=True,
)
LATE = finished(
    "finance", "revenue", [step("revenue", [], ["finance.revenue"], passed=2)], minutes=5
)


async def until(client: httpx.AsyncClient, route: str, check, timeout: float = 20) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            r = await client.get(route)
            if r.status_code == 200 and check(r.json()):
                return dict(r.json())
            await asyncio.sleep(0.05)


async def taken(db_url: str, schema: str, message_id: uuid.UUID) -> None:
    """Wait until the registry's inbox holds the message: it was handled."""
    conn = await asyncpg.connect(db_url)
    try:
        async with asyncio.timeout(20):
            while not await conn.fetchval(
                f'SELECT count(*) FROM "{schema}".inbox WHERE message_id = $1', message_id
            ):
                await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def test_dataset_view_follows_runs_through_the_mesh(
    served, kafka_settings, db_settings, schema
):
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=served, headers=headers) as client:
        assert (await client.post("/v1/apply", json={"files": mesh_files()})).status_code == 200
        await produce(kafka_settings, CHAIN)
        for message in CHAIN:  # the runs land on several partitions: wait for each of them
            await taken(db_settings.url, schema, message.message_id)
        revenue = (await client.get("/v1/datasets/finance.revenue")).json()
        assert [(w["domain"], w["recipe"], w["step"]) for w in revenue["writers"]] == [
            ("finance", "revenue", "revenue")
        ]
        assert [(r["domain"], r["step"]) for r in revenue["readers"]] == [("marketing", "refresh")]
        assert revenue["health"] == "passed"
        assert revenue["last_written_by"] == str(CHAIN[2].order_run_id)
        settlements = (await client.get("/v1/datasets/payments.settlements")).json()
        assert (settlements["health"], [r["domain"] for r in settlements["readers"]]) == (
            "warning",
            ["finance"],
        )

        # A failed test of the next run turns the health red; an older run arriving late
        # changes nothing.
        await produce(kafka_settings, [BROKEN])
        await until(client, "/v1/datasets/finance.revenue", lambda v: v["health"] == "failed")
        await produce(kafka_settings, [LATE])
        await taken(db_settings.url, schema, LATE.message_id)
        revenue = (await client.get("/v1/datasets/finance.revenue")).json()
        assert (revenue["health"], revenue["last_written_by"]) == (
            "failed",
            str(BROKEN.order_run_id),
        )

        names = [d["name"] for d in (await client.get("/v1/datasets")).json()]
        assert names == sorted(
            [
                "file:orders.csv",
                "finance.revenue",
                "marketing.revenue_dashboard",
                "payments.settlements",
                "s3://lake/raw/orders.csv",
                "sales.orders_daily",
                "sales.raw_orders",
                "sales.stg_orders",
            ]
        )

        # Read scopes: a marketing reader sees marketing's use, nothing of other domains.
        r = await client.post(
            "/v1/tokens", json={"principal": "mk", "scopes": {"marketing": ["read"]}}
        )
        marketing = {"Authorization": f"Bearer {r.json()['token']}"}
        mine = (await client.get("/v1/datasets/finance.revenue", headers=marketing)).json()
        assert (mine["writers"], [r["domain"] for r in mine["readers"]]) == ([], ["marketing"])
        hidden = await client.get("/v1/datasets/sales.raw_orders", headers=marketing)
        assert hidden.status_code == 404
        assert hidden.json()["detail"] == (
            "unknown dataset 'sales.raw_orders' (no step or monitor of a domain you may read uses"
            " it)"
        )
        listed = (await client.get("/v1/datasets", headers=marketing)).json()
        assert [d["name"] for d in listed] == ["finance.revenue", "marketing.revenue_dashboard"]

    code, out = await sous(served, "dataset", "finance.revenue")
    assert code == 0, out
    assert "finance.revenue health: failed" in out
    assert "finance/revenue.revenue" in out
    assert "marketing/dashboard.refresh" in out
    assert str(BROKEN.order_run_id) in out
    code, out = await sous(served, "dataset", "s3://lake/raw/orders.csv", "--json")
    assert code == 0, out
    assert '"step": "ingest"' in out
    code, out = await sous(served, "datasets")
    assert (code, "payments.settlements" in out, "warning" in out) == (0, True, True), out
    code, out = await sous(served, "dataset", "nowhere.nothing")
    assert code == 1, out
    assert "unknown dataset 'nowhere.nothing'" in out


def check(minutes: int, *, passed: bool) -> TestSuiteFinished:
    """A monitor check's summary as the test-runner publishes it."""
    check_id = uuid.uuid4()
    status = TestStatus.PASSED if passed else TestStatus.FAILED
    return TestSuiteFinished(
        producer="sous-test-runner",
        order_run_id=check_id,
        step_run_id=check_id,
        suite_id=check_id,
        step="revenue",
        summary=TestSummary(passed=1) if passed else TestSummary(failed=1),
        blocking=not passed,
        failed_tests=[] if passed else ["one_row_per_day"],
        results={"one_row_per_day": status},
        domain="finance",
        kitchen="prod",
        monitor="revenue",
        dataset="finance.watched",
        occurred_at=T0 + timedelta(minutes=minutes),
    )


async def test_dataset_view_shows_the_latest_monitor_health(
    served, kafka_settings, db_settings, schema
):
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    failing, passing, late = check(1, passed=False), check(5, passed=True), check(3, passed=False)
    async with httpx.AsyncClient(base_url=served, headers=headers) as client:
        assert (await client.post("/v1/apply", json={"files": mesh_files()})).status_code == 200
        await produce(kafka_settings, [failing])
        view = await until(client, "/v1/datasets/finance.watched", lambda v: v["monitors"])
        [monitor] = view["monitors"]
        assert (monitor["domain"], monitor["monitor"], monitor["passed"]) == (
            "finance",
            "revenue",
            False,
        )
        assert monitor["results"] == {"one_row_per_day": "failed"}
        assert monitor["last_check"] == str(failing.suite_id)
        code, out = await sous(served, "dataset", "finance.watched")
        assert code == 0, out
        assert "finance/revenue" in out
        assert "failing: one_row_per_day" in out

        # A passing check replaces it; an older one arriving late changes nothing.
        await produce(kafka_settings, [passing, late])
        await taken(db_settings.url, schema, late.message_id)
        [monitor] = (await client.get("/v1/datasets/finance.watched")).json()["monitors"]
        assert (monitor["passed"], monitor["last_check"]) == (True, str(passing.suite_id))
        # A monitor's check is no run: the run read model holds nothing of it.
        assert (await client.get(f"/v1/runs/{passing.order_run_id}")).status_code == 404
