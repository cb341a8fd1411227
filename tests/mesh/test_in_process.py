"""The scheduler, executor and test-runner together in this process, on real Kafka and
PostgreSQL: sales loads data, its tests gate each step, and finance follows by itself.

Not end-to-end: the registry is played by messages on its changelog, and the services share
one process. `tests/e2e/test_stack.py` runs the whole mesh as processes."""

from __future__ import annotations

import contextlib
import uuid
from datetime import date
from decimal import Decimal

import asyncpg
import pytest

from sous_common.settings import DatabaseSettings
from sous_contracts.common import RunStatus
from sous_contracts.registry import EntityKind
from sous_contracts.runs import OrderRunFinished, StartOrderRun
from sous_contracts.tests import TestResult
from sous_executor.app import build as build_executor
from sous_executor.settings import ExecutorSettings
from sous_scheduler.app import build as build_scheduler
from sous_scheduler.settings import SchedulerSettings
from sous_test_runner.app import build as build_test_runner
from sous_test_runner.settings import TestRunnerSettings
from tests.scheduler.integration.test_openlineage import lineage_of, story
from tests.scheduler.integration.test_runs import finished, run_events
from tests.scheduler.openlineage import problems
from tests.scheduler.standins import entity, send

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def mesh(data_schema: str) -> list:
    warehouse = {"warehouse": {"ref": "secret:warehouse"}}
    rows_ok = {
        "name": "rows",
        "check": {"kind": "row_count", "table": f"{data_schema}.orders", "min": 3},
    }
    sales = {
        "recipe": "daily",
        "params": {"day": {"type": "date", "default": "2026-01-05"}},
        "variations": {"prod": {"kitchen": "prod"}},
        "steps": {
            "load": {
                "run": {
                    "kind": "sql",
                    "connection": "warehouse",
                    "sql": (
                        f"CREATE TABLE {data_schema}.orders (id int PRIMARY KEY, amount numeric,"
                        " day date); "
                        f"INSERT INTO {data_schema}.orders VALUES (1, 10.5, '${{params.day}}'),"
                        f" (2, 20, '${{params.day}}'), (3, 5, '${{params.day}}') RETURNING id"
                    ),
                },
                "outputs": [f"{data_schema}.orders"],
                "tests": [
                    rows_ok,
                    {
                        "name": "unique_ids",
                        "check": {
                            "kind": "unique",
                            "table": f"{data_schema}.orders",
                            "columns": ["id"],
                        },
                    },
                ],
            },
            "report": {
                "needs": ["load"],
                "run": {
                    "kind": "shell",
                    "argv": [
                        "python",
                        "-c",
                        "import json, os; day = os.environ['SOUS_PARAM_DAY'];"
                        " out = open(os.environ['SOUS_OUTPUTS'], 'w');"
                        " json.dump({'values': {'day': day},"
                        " 'datasets': [{'uri': 'file:report-' + day + '.json'}]}, out)",
                    ],
                },
                "inputs": [f"{data_schema}.orders"],
                "tests": [
                    {
                        "name": "day",
                        "check": {
                            "kind": "metric",
                            "output": "day",
                            "op": "==",
                            "value": "2026-01-05",
                        },
                    }
                ],
            },
        },
    }
    finance = {
        "recipe": "revenue",
        "params": {"day": {"type": "date", "required": True}},
        "variations": {"prod": {"kitchen": "prod"}},
        "triggers": [
            {
                "on": {"domain": "sales", "recipe": "daily"},
                "variation": "prod",
                "params": {"day": "${event.params.day}"},
            }
        ],
        "steps": {
            "sum": {
                "run": {
                    "kind": "sql",
                    "connection": "warehouse",
                    "sql": (
                        f"CREATE TABLE {data_schema}.revenue AS SELECT day, sum(amount) AS total"
                        f" FROM {data_schema}.orders WHERE day = '${{params.day}}' GROUP BY day"
                    ),
                },
                "inputs": [f"{data_schema}.orders"],
                "outputs": [f"{data_schema}.revenue"],
                "tests": [
                    {
                        "name": "total",
                        "severity": "warning",
                        "check": {
                            "kind": "sql",
                            "query": f"SELECT total FROM {data_schema}.revenue",
                            "op": "==",
                            "value": 35.5,
                        },
                    }
                ],
            }
        },
    }
    return [
        entity(EntityKind.KITCHEN, "prod", {"kitchen": "prod"}),
        entity(EntityKind.DOMAIN, "sales", {"domain": "sales", "connections": warehouse}),
        entity(EntityKind.DOMAIN, "finance", {"domain": "finance", "connections": warehouse}),
        entity(EntityKind.RECIPE, "daily", sales, "sales"),
        entity(EntityKind.RECIPE, "revenue", finance, "finance"),
    ]


async def test_sales_then_finance_with_the_services_in_process(
    kafka_settings, servers, monkeypatch
):
    # Each domain's own secret store holds its warehouse DSN.
    monkeypatch.setenv("SOUS_SECRET_SALES__WAREHOUSE", servers.database_url)
    monkeypatch.setenv("SOUS_SECRET_FINANCE__WAREHOUSE", servers.database_url)
    suffix = uuid.uuid4().hex[:8]
    data_schema = f"e2e_{suffix}"
    database = DatabaseSettings(url=servers.database_url)
    conn = await asyncpg.connect(servers.database_url)
    await conn.execute(f"CREATE SCHEMA {data_schema}")
    await send(kafka_settings, mesh(data_schema))
    scheduler, _ = build_scheduler(
        SchedulerSettings(schema_name=f"s_{suffix}"), kafka_settings, database
    )
    executor, _ = build_executor(
        ExecutorSettings(schema_name=f"x_{suffix}"), kafka_settings, database
    )
    tester = build_test_runner(
        TestRunnerSettings(
            kafka=kafka_settings, database=database, db_schema=f"r_{suffix}", consumers=1
        )
    ).runtime
    command = StartOrderRun(
        order_run_id=uuid.uuid4(), domain="sales", recipe="daily", variation="prod"
    )
    try:
        async with contextlib.AsyncExitStack() as stack:
            for rt in (scheduler, executor, tester):
                await stack.enter_async_context(rt.running())
            await send(kafka_settings, [command])
            events = await run_events(kafka_settings, lambda s: len(finished(s)) >= 2, 90)
            results = await run_events(
                kafka_settings,
                lambda s: sum(isinstance(e, TestResult) for e in s) >= 4,
                30,
                topic="test",
            )
            lineage = {
                e.recipe: await lineage_of(kafka_settings, e.order_run_id) for e in finished(events)
            }
        orders = await conn.fetch(f"SELECT id, amount, day FROM {data_schema}.orders ORDER BY id")
        revenue = await conn.fetch(f"SELECT day, total FROM {data_schema}.revenue")
    finally:
        for schema in (data_schema, f"s_{suffix}", f"x_{suffix}", f"r_{suffix}"):
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()
    done = {
        f"{e.domain}/{e.recipe}": e for e in finished(events) if isinstance(e, OrderRunFinished)
    }
    assert set(done) == {"sales/daily", "finance/revenue"}
    # What the steps left in the warehouse: finance summed the day sales loaded.
    day = date(2026, 1, 5)
    assert [tuple(r) for r in orders] == [
        (1, Decimal("10.5"), day),
        (2, Decimal("20"), day),
        (3, Decimal("5"), day),
    ]
    assert [tuple(r) for r in revenue] == [(day, Decimal("35.5"))]
    assert done["sales/daily"].status is RunStatus.SUCCEEDED, done["sales/daily"].reason
    assert done["finance/revenue"].status is RunStatus.SUCCEEDED, done["finance/revenue"].reason
    assert done["sales/daily"].tests.passed == 3
    assert done["finance/revenue"].tests.passed == 1
    assert done["sales/daily"].outputs.values["day"] == "2026-01-05"
    names = {(r.step, r.test, r.status) for r in results if isinstance(r, TestResult)}
    assert ("load", "rows", "passed") in names
    assert ("sum", "total", "passed") in names
    # OpenLineage: every run and step started and completed, in order, valid, with datasets
    # and the test-runner's results as data-quality assertions.
    assert story(lineage["daily"]) == [
        "START sales.daily",
        "START sales.daily.load",
        "START sales.daily.load.tests",
        "COMPLETE sales.daily.load.tests",
        "COMPLETE sales.daily.load",
        "START sales.daily.report",
        "START sales.daily.report.tests",
        "COMPLETE sales.daily.report.tests",
        "COMPLETE sales.daily.report",
        "COMPLETE sales.daily",
    ]
    assert story(lineage["revenue"]) == [
        "START finance.revenue",
        "START finance.revenue.sum",
        "START finance.revenue.sum.tests",
        "COMPLETE finance.revenue.sum.tests",
        "COMPLETE finance.revenue.sum",
        "COMPLETE finance.revenue",
    ]
    every = [*lineage["daily"], *lineage["revenue"]]
    assert [problems(e) for e in every] == [[]] * len(every)
    report = lineage["daily"][-2]
    assert [d["name"] for d in report["outputs"]] == ["file:report-2026-01-05.json"]
    (revenue_out,) = lineage["revenue"][-2]["outputs"]
    assert revenue_out == {"namespace": revenue_out["namespace"], "name": f"{data_schema}.revenue"}
    # The test-runner's results: input facets of the datasets the suite read.
    (checked,) = lineage["revenue"][-3]["inputs"]
    assert checked["name"] == f"{data_schema}.revenue"
    assert checked["inputFacets"]["dataQualityAssertions"]["assertions"] == [
        {"assertion": "total", "success": True}
    ]
