"""`sous up` as a user runs it: the whole mesh on real Kafka and PostgreSQL, the examples
applied, sales and payments run, finance and marketing follow by themselves; a service
killed with SIGKILL mid-run is restarted by the supervisor and the run still finishes.
Every service's ops endpoint is ready, and its metrics move with the runs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid

import asyncpg
import pytest

from sous_contracts.common import RunStatus
from sous_contracts.runs import DomainRunCompleted, StartOrderRun
from tests.ops import scrape, status, total
from tests.scheduler.integration.test_openlineage import lineage_of
from tests.scheduler.integration.test_runs import finished, run_events
from tests.scheduler.openlineage import problems
from tests.scheduler.standins import send
from tests.sous_up import sous_up

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e, pytest.mark.slow]


async def dataset_view(env: dict[str, str], name: str) -> dict:
    """`sous dataset NAME --json` until the registry has both readers (it follows the runs)."""
    async with asyncio.timeout(60):
        while True:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "sous.cli",
                "dataset",
                name,
                "--json",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await proc.communicate()
            if proc.returncode == 0 and len((view := json.loads(out))["readers"]) >= 2:
                return dict(view)
            await asyncio.sleep(0.2)


async def test_up_runs_the_mesh_and_survives_a_killed_scheduler(
    kafka_settings, servers, warehouse, tmp_path
) -> None:
    async with sous_up(servers.database_url, kafka_settings, warehouse, tmp_path) as up:
        text = up.said
        assert "14 entities changed" in text
        assert "finance/revenue follows" in text
        assert "ops endpoints (/healthz /readyz /metrics)" in text
        ops = dict(
            line.split("=", 1) for line in (tmp_path / "stack" / "ops").read_text().splitlines()
        )
        assert set(ops) == {"domain-registry", "scheduler", "executor", "test-runner", "console"}
        for name, url in ops.items():  # the supervisor printed that line once all were ready
            assert await status(url, "/readyz") == 200, name

        # The examples' first runs, and the two that follow them by themselves.
        events = await run_events(kafka_settings, lambda s: len(finished(s)) >= 4, 120)
        done = {f"{e.domain}/{e.recipe}": e for e in finished(events)}
        assert set(done) == {
            "sales/daily",
            "payments/settle",
            "finance/revenue",
            "marketing/dashboard",
        }
        assert all(e.status is RunStatus.SUCCEEDED for e in done.values()), {
            k: e.reason for k, e in done.items()
        }

        # Lineage: each run of the chain told its START first and its COMPLETE last, every
        # event schema-valid; the registry shows who writes and reads finance's revenue.
        for e in done.values():
            told = await lineage_of(kafka_settings, e.order_run_id, 60)
            assert (told[0]["eventType"], told[-1]["eventType"]) == ("START", "COMPLETE")
            assert [problems(x) for x in told] == [[]] * len(told)
        view = await dataset_view(up.env | {"SOUS_TOKEN": up.token}, "finance_dev.revenue")
        assert [(w["domain"], w["step"]) for w in view["writers"]] == [("finance", "revenue")]
        assert sorted((r["domain"], r["step"]) for r in view["readers"]) == [
            ("finance", "publish__snapshot"),  # the publish_table ingredient copies it
            ("marketing", "refresh"),
        ]
        assert view["health"] == "passed"
        assert view["last_written_by"] == str(done["finance/revenue"].order_run_id)

        before = {name: await scrape(url) for name, url in ops.items()}
        assert total(before["scheduler"], "sous_runs_started_total") >= 4
        assert total(before["scheduler"], "sous_runs_finished_total", status="succeeded") >= 4

        # Kill the scheduler in the middle of a new run; the supervisor restarts it.
        run = StartOrderRun(
            order_run_id=uuid.uuid4(),
            domain="sales",
            recipe="daily",
            variation="dev",
            params={"day": "2026-11-25"},
        )
        await send(kafka_settings, [run])
        await run_events(
            kafka_settings,
            lambda s: any(
                e.type == "OrderRunStarted" and e.order_run_id == run.order_run_id
                for s_ in [s]
                for e in s_
            ),
            60,
        )
        pid = int((tmp_path / "stack" / "scheduler.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        events = await run_events(
            kafka_settings,
            lambda s: any(e.order_run_id == run.order_run_id for e in finished(s)),
            120,
        )
        (again,) = [e for e in finished(events) if e.order_run_id == run.order_run_id]
        assert again.status is RunStatus.SUCCEEDED, again.reason
        restarted = int((tmp_path / "stack" / "scheduler.pid").read_text())
        assert restarted != pid

        # The metrics moved with the run: scraped and parsed as Prometheus reads them.
        after = {name: await scrape(url) for name, url in ops.items()}

        def grew(name: str, metric: str, **labels: str) -> bool:
            return total(after[name], metric, **labels) > total(before[name], metric, **labels)

        handled = "sous_handle_seconds_count"
        assert grew("executor", handled, type="ExecuteStep")
        assert grew("executor", "sous_step_attempts_finished_total", status="succeeded")
        assert grew("test-runner", handled, type="RunTests")
        assert grew("test-runner", "sous_test_results_total")
        assert grew("domain-registry", handled, type="OrderRunFinished")
        assert grew("console", handled, type="OrderRunFinished")
        for name in ("executor", "test-runner"):  # they answer through their outboxes
            assert grew(name, "sous_relay_published_total"), name
            assert total(after[name], "sous_relay_latency_seconds_count") > 0, name
        # The scheduler restarted (its counters began again): the run it finished counts.
        assert total(after["scheduler"], "sous_runs_finished_total", domain="sales") >= 1
        assert total(after["scheduler"], handled, type="StepFinished") >= 1

        # The data landed in the dev kitchen's own schemas, none in prod's, and every domain
        # announced its completion on the domain topic.
        conn = await asyncpg.connect(warehouse)
        try:
            assert await conn.fetchval("SELECT count(*) FROM sales_dev.orders_daily") > 0
            assert await conn.fetchval("SELECT count(*) FROM finance_dev.revenue") > 0
            assert await conn.fetchval("SELECT count(*) FROM marketing_dev.revenue_dashboard") > 0
            assert await conn.fetchval("SELECT count(*) FROM published_dev.catalog") >= 2
            prod = "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ANY($1)"
            schemas = ["sales", "finance", "payments", "marketing", "published"]
            assert await conn.fetch(prod, schemas) == []
        finally:
            await conn.close()
        completions = await run_events(
            kafka_settings, lambda s: len({e.domain for e in s}) >= 4, 30, topic="domain"
        )
        assert all(isinstance(e, DomainRunCompleted) for e in completions)
        assert {e.domain for e in completions} >= {"sales", "payments", "finance", "marketing"}
