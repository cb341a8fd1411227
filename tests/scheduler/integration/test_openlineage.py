"""OpenLineage events of runs and steps, read back from the lineage topic on real servers."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import uuid
from datetime import datetime
from typing import Any, ClassVar

import pytest
from aiokafka import AIOKafkaConsumer

from sous_common.kafka import aiokafka_options
from sous_contracts.runs import CancelOrderRun, OrderRunFinished, StartOrderRun
from sous_contracts.topics import LINEAGE, RUN_EVENTS
from sous_scheduler.settings import LineageSettings
from tests.scheduler.integration.conftest import handled, publish_registry, recipe, run_scheduler
from tests.scheduler.integration.test_runs import read_topics
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
    """Read the lineage topic from its start until the run's own end event arrived.

    The topic is keyed by run, so order holds per run only: a nested run's events sit on
    other partitions. Once the end is seen, everything produced before it is read too (up
    to the end offsets of that moment), and the events come back in the order of their
    event time, which the scheduler sets as it decides.
    """
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

    async def read() -> None:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            for r in records:
                assert r.key is not None
                event = json.loads(r.value)
                if str(run_id) in (event["run"]["runId"], *_parents(event)):
                    mine.append(event)

    try:
        async with asyncio.timeout(timeout):
            while not ended():
                await read()
            ends = await consumer.end_offsets(list(consumer.assignment()))
            for tp, end in ends.items():
                while await consumer.position(tp) < end:
                    await read()
    finally:
        await consumer.stop()
    return sorted(mine, key=lambda e: datetime.fromisoformat(e["eventTime"]))


def _parents(event: dict[str, Any]) -> list[str]:
    """The parent and root runs an event names (its steps, suites and nested runs)."""
    parent = event["run"]["facets"].get("parent", {})
    if not parent:
        return []
    return [parent["run"]["runId"], parent.get("root", {}).get("run", {}).get("runId")]


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
            ends = await read_topics(
                kafka_settings,
                [RUN_EVENTS],
                lambda ms: any(isinstance(m, OrderRunFinished) for m in ms),
            )
    # The run's end carries its datasets to the registry's read model.
    (end,) = [m for m in ends if isinstance(m, OrderRunFinished)]
    model = next(d for d in end.datasets if d.step == "model")
    assert (model.inputs, model.outputs, model.tests.passed) == (
        ["sales_dev.raw_orders"],
        ["sales_dev.orders_daily"],
        1,
    )
    assert story(events) == [
        "START sales.daily",
        "START sales.daily.ingest",
        "COMPLETE sales.daily.ingest",
        "START sales.daily.model",
        "START sales.daily.model.tests",
        "COMPLETE sales.daily.model.tests",
        "COMPLETE sales.daily.model",
        "COMPLETE sales.daily",
    ]
    assert [problems(e) for e in events] == [[]] * len(events)
    run_end, model_end, suite_end = events[-1], events[-2], events[-3]
    assert model_end["run"]["facets"]["parent"]["run"]["runId"] == str(run_id)
    assert model_end["run"]["facets"]["parent"]["root"]["run"]["runId"] == str(run_id)
    assert model_end["inputs"] == [{"namespace": "sous.prod", "name": "sales_dev.raw_orders"}]
    assert model_end["outputs"] == [{"namespace": "sous.prod", "name": "sales_dev.orders_daily"}]
    # The tests read what the step wrote: their results are input facets of the suite's run.
    assert suite_end["run"]["facets"]["parent"]["run"]["runId"] == model_end["run"]["runId"]
    (checked,) = suite_end["inputs"]
    assert checked["name"] == "sales_dev.orders_daily"
    assert checked["inputFacets"]["dataQualityAssertions"]["assertions"] == [
        {"assertion": "rows", "success": True}
    ]
    assert suite_end["outputs"] == []
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
    assert story(events)[-3:] == [
        "FAIL sales.daily.model.tests",
        "FAIL sales.daily.model",
        "FAIL sales.daily",
    ]
    assert [problems(e) for e in events] == [[]] * len(events)
    assert events[-2]["outputs"] == [{"namespace": "sous.prod", "name": "sales_dev.orders_daily"}]
    assertions = events[-3]["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
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


async def test_a_nested_run_names_the_step_that_started_it_as_parent(
    kafka_settings, servers, schema
):
    child_steps = {"rates": {"run": {"kind": "noop"}, "outputs": ["fin.fx_rates"]}}
    async with run_scheduler(kafka_settings, servers, schema) as scheduler:
        await publish_registry(
            kafka_settings,
            scheduler,
            [
                recipe("fin", "fx", child_steps),
                recipe("sales", "daily", {"fx": {"recipe": "fin/fx"}}),
            ],
        )
        run_id = uuid.uuid4()
        async with standins(kafka_settings):
            await handled(scheduler, [daily(run_id)])
            events = await lineage_of(kafka_settings, run_id)
    assert story(events) == [
        "START sales.daily",
        "START sales.daily.fx",
        "START fin.fx",
        "START fin.fx.rates",
        "COMPLETE fin.fx.rates",
        "COMPLETE fin.fx",
        "COMPLETE sales.daily.fx",
        "COMPLETE sales.daily",
    ]
    assert [problems(e) for e in events] == [[]] * len(events)
    fx_step, child, child_step = events[1], events[2], events[3]
    assert child["run"]["facets"]["parent"]["run"] == {"runId": fx_step["run"]["runId"]}
    assert child["run"]["facets"]["parent"]["job"] == {
        "namespace": "sous.prod",
        "name": "sales.daily.fx",
    }
    root = {"run": {"runId": str(run_id)}, "job": {"namespace": "sous.prod", "name": "sales.daily"}}
    assert child["run"]["facets"]["parent"]["root"] == root
    assert child_step["run"]["facets"]["parent"]["run"] == {"runId": child["run"]["runId"]}
    assert child_step["run"]["facets"]["parent"]["root"] == root
    assert "parent" not in events[0]["run"]["facets"]


class Marquez(http.server.BaseHTTPRequestHandler):
    """Takes lineage POSTs as Marquez does, and keeps them."""

    received: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


async def test_the_http_transport_sends_the_events_to_a_lineage_server(
    kafka_settings, servers, schema, monkeypatch
):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Marquez)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{server.server_port}")
    run_id = uuid.uuid4()
    try:
        async with run_scheduler(
            kafka_settings, servers, schema, openlineage=LineageSettings(transport="http")
        ) as scheduler:
            await publish_registry(
                kafka_settings, scheduler, [recipe("sales", "daily", STEPS, params=PARAMS)]
            )
            async with standins(kafka_settings):
                await handled(scheduler, [daily(run_id)])
                async with asyncio.timeout(30):
                    while not any(
                        e["run"]["runId"] == str(run_id) and e["eventType"] == "COMPLETE"
                        for _, e in Marquez.received
                    ):
                        await asyncio.sleep(0.05)
    finally:
        server.shutdown()
    assert {path for path, _ in Marquez.received} == {"/api/v1/lineage"}
    assert story([e for _, e in Marquez.received])[:2] == [
        "START sales.daily",
        "START sales.daily.ingest",
    ]
    assert all(problems(e) == [] for _, e in Marquez.received)


async def test_a_lineage_server_that_is_down_holds_up_no_run(
    kafka_settings, servers, schema, monkeypatch
):
    # The client's standard configuration: a port nobody listens on, no retries.
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "http")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__URL", "http://127.0.0.1:9")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__RETRY", '{"total": 0}')
    run_id = uuid.uuid4()
    async with run_scheduler(
        kafka_settings, servers, schema, openlineage=LineageSettings(transport="http")
    ) as scheduler:
        await publish_registry(
            kafka_settings, scheduler, [recipe("sales", "daily", STEPS, params=PARAMS)]
        )
        async with standins(kafka_settings):
            await handled(scheduler, [daily(run_id)])
            ends = await read_topics(
                kafka_settings,
                [RUN_EVENTS],
                lambda ms: any(isinstance(m, OrderRunFinished) for m in ms),
            )
        assert await scheduler.rt.outbox_drained()
        refused = await scheduler.rt.pool.fetch("SELECT topic, reason FROM outbox_refused")
    assert [m.status.value for m in ends if isinstance(m, OrderRunFinished)] == ["succeeded"]
    # Every event was moved aside with the reason (and a dead letter), none silently lost.
    assert len(refused) == 8  # the run, two steps and one test suite: a START and an end each
    assert {r["topic"] for r in refused} == {LINEAGE.full_name(kafka_settings.topic_prefix)}
    assert "lineage server: ConnectionError" in refused[0]["reason"]
