"""`sous lineage` and `sous impact` against a served registry fed run events with causes."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from sous_contracts.common import RunStatus, Severity, TestStatus
from sous_contracts.runs import OrderRunFinished, OrderRunStarted, RunCause
from sous_contracts.tests import TestResult
from tests.domain_registry.conftest import admin
from tests.domain_registry.integration.test_cli import served, sous
from tests.domain_registry.run_events import produce

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
__all__ = ["served"]


def run(domain: str, cause: RunCause) -> tuple[uuid.UUID, list]:
    """A run of `domain`/make that started for `cause` and succeeded."""
    run_id = uuid.uuid4()
    where = {
        "order_run_id": run_id,
        "domain": domain,
        "recipe": "make",
        "variation": "prod",
        "kitchen": "prod",
    }
    return run_id, [
        OrderRunStarted(**where, cause=cause),
        OrderRunFinished(**where, status=RunStatus.SUCCEEDED),
    ]


def after(trigger: str, upstream: uuid.UUID) -> RunCause:
    return RunCause(kind="trigger", trigger=trigger, upstream_order_run_ids=[upstream])


async def test_lineage_tree_and_impact_of_a_warned_test(served, kafka_settings) -> None:
    a, a_events = run("payments", RunCause(kind="command", principal="alice"))
    b, b_events = run("finance", after("finance/make#after-payments", a))
    c, c_events = run("marketing", after("marketing/make#after-finance", b))
    d, d_events = run("sales", RunCause(kind="command", principal="bob"))  # unrelated
    warned = TestResult(
        order_run_id=a,
        step_run_id=uuid.uuid4(),
        suite_id=uuid.uuid4(),
        step="load",
        test="late_rows",
        kind="sql",
        severity=Severity.WARNING,
        status=TestStatus.WARNING,
        domain="payments",
        recipe="make",
        kitchen="prod",
        message="12 rows late",
    )
    await produce(kafka_settings, [*a_events, *b_events, *c_events, *d_events, warned])
    async with httpx.AsyncClient(base_url=served, headers=admin()) as client:
        async with asyncio.timeout(20):
            while True:
                found = [(await client.get(f"/v1/runs/{i}")) for i in (a, b, c, d)]
                ended = all(
                    r.status_code == 200 and r.json()["status"] == "succeeded" for r in found
                )
                if ended and found[0].json()["test_results"]:
                    break
                await asyncio.sleep(0.05)

    code, out = await sous(served, "lineage", str(c), "--up")
    assert code == 0, out
    assert "upstream (why it started)" in out
    assert f"finance/make [prod] in prod succeeded  tests p/f/w 0/0/0  {b}" in out
    assert "via marketing/make#after-finance" in out
    assert f"payments/make [prod] in prod succeeded  tests p/f/w 0/0/0  {a}" in out
    assert "(started by alice)" in out
    assert out.index(str(c)) < out.index(str(b)) < out.index(str(a))
    assert str(d) not in out

    code, out = await sous(served, "impact", str(warned.message_id))
    assert code == 0, out
    assert "test load/late_rows (warning) warning 12 rows late" in out
    assert "notify: finance, marketing" in out
    assert str(b) in out
    assert str(c) in out
    assert str(d) not in out

    code, out = await sous(served, "impact", str(d))
    assert (code, "no downstream runs" in out) == (0, True), out
    code, out = await sous(served, "lineage", str(uuid.uuid4()))
    assert code == 1, out
