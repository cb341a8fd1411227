"""OpenLineage events of runs and steps, read back from the lineage topic on real servers."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from sous_common.kafka import aiokafka_options
from sous_contracts.runs import CancelOrderRun, StartOrderRun
from sous_contracts.topics import LINEAGE
from tests.scheduler.integration.conftest import handled, publish_registry, recipe, run_scheduler
from tests.scheduler.openlineage import problems
from tests.scheduler.standins import standins

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ROWS = {"name": "rows", "check": {"kind": "metric", "output": "rows", "op": ">", "value": 0}}
STEPS = {
    "ingest": {
        "run": {"kind": "noop"},
        "inputs": ["file:orders.csv"],
        "outputs": ["sales${params.suffix}.raw_orders"],
    },
    "model": {
        "needs": ["ingest"],
        "run": {"kind": "noop"},
        "inputs": ["sales${params.suffix}.raw_orders"],
        "outputs": ["sales${params.suffix}.orders_daily"],
        "tests": [ROWS],
    },
}
PARAMS = {"suffix": {"type": "string", "default": "_dev"}}


async def lineage_of(settings, run_id: uuid.UUID, timeout: float = 30) -> list[dict[str, Any]]:
    """Read the lineage topic from its start until the run's own end event arrived."""
    consumer = AIOKafkaConsumer(
        LINEAGE.full_name(settings.topic_prefix),
        **aiokafka_options(settings),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    mine: list[dict[str, Any]] = []

    def ended() -> bool:
        return any(e["run"]["runId"] == str(run_id) and e["eventType"] != "START" for e in mine)

    try:
        async with asyncio.timeout(timeout):
            while not ended():
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for r in records:
                        assert r.key == str(run_id).encode() or r.key is not None
                        event = json.loads(r.value)
                        parent = event["run"]["facets"].get("parent", {}).get("run", {})
                        if str(run_id) in (event["run"]["runId"], parent.get("runId")):
                            mine.append(event)
    finally:
        await consumer.stop()
    return mine


def daily(run_id: uuid.UUID) -> StartOrderRun:
    return StartOrderRun(order_run_id=run_id, domain="sales", recipe="daily", variation="prod")


def story(events: list[dict[str, Any]]) -> list[str]:
    return [f"{e['eventType']} {e['job']['name']}" for e in events]


async def test_a_run_tells_its_lineage_complete_ordered_and_valid(kafka_settings, servers, schema):
    async with run_scheduler(kafka_settings, servers, schema) as scheduler:
        await publish_registry(
            kafka_settings, scheduler, [recipe("sales", "daily", STEPS, params=PARAMS)]
        )
        run_id = uuid.uuid4()
        async with standins(kafka_settings):
            await handled(
                scheduler,
                [
                    StartOrderRun(
                        order_run_id=run_id, domain="sales", recipe="daily", variation="prod"
                    )
                ],
            )
            events = await lineage_of(kafka_settings, run_id)
    assert story(events) == [
        "START sales.daily",
        "START sales.daily.ingest",
        "COMPLETE sales.daily.ingest",
        "START sales.daily.model",
        "COMPLETE sales.daily.model",
        "COMPLETE sales.daily",
    ]
    assert [problems(e) for e in events] == [[]] * len(events)
    run_end, model_end = events[-1], events[-2]
    assert model_end["run"]["facets"]["parent"]["run"]["runId"] == str(run_id)
    assert model_end["inputs"] == [{"namespace": "sous.prod", "name": "sales_dev.raw_orders"}]
    (written,) = model_end["outputs"]
    assert written["name"] == "sales_dev.orders_daily"
    assert written["facets"]["dataQualityAssertions"]["assertions"] == [
        {"assertion": "rows", "success": True}
    ]
    # The run reads what came from outside it and writes every dataset its steps wrote.
    assert [d["name"] for d in run_end["inputs"]] == ["file:orders.csv"]
    assert [d["name"] for d in run_end["outputs"]] == [
        "sales_dev.orders_daily",
        "sales_dev.raw_orders",
    ]


async def test_a_failed_test_fails_the_step_and_the_run_in_lineage(kafka_settings, servers, schema):
    async with run_scheduler(kafka_settings, servers, schema) as scheduler:
        await publish_registry(
            kafka_settings, scheduler, [recipe("sales", "daily", STEPS, params=PARAMS)]
        )
        run_id = uuid.uuid4()
        async with standins(kafka_settings, blocking_tests={"rows"}):
            await handled(
                scheduler,
                [
                    StartOrderRun(
                        order_run_id=run_id, domain="sales", recipe="daily", variation="prod"
                    )
                ],
            )
            events = await lineage_of(kafka_settings, run_id)
    assert story(events)[-2:] == ["FAIL sales.daily.model", "FAIL sales.daily"]
    assert [problems(e) for e in events] == [[]] * len(events)
    assertions = events[-2]["outputs"][0]["facets"]["dataQualityAssertions"]["assertions"]
    assert assertions == [{"assertion": "rows", "success": False}]


async def test_a_cancelled_run_aborts_in_lineage(kafka_settings, servers, schema):
    async with run_scheduler(kafka_settings, servers, schema) as scheduler:
        await publish_registry(
            kafka_settings, scheduler, [recipe("sales", "daily", STEPS, params=PARAMS)]
        )
        run_id = uuid.uuid4()
        # No executor answers: the first step stays dispatched until the cancel.
        await handled(
            scheduler,
            [
                StartOrderRun(
                    order_run_id=run_id, domain="sales", recipe="daily", variation="prod"
                ),
                CancelOrderRun(order_run_id=run_id, reason="not today"),
            ],
        )
        events = await lineage_of(kafka_settings, run_id)
    assert story(events) == [
        "START sales.daily",
        "START sales.daily.ingest",
        "ABORT sales.daily.ingest",
        "ABORT sales.daily",
    ]
    assert [problems(e) for e in events] == [[]] * len(events)
