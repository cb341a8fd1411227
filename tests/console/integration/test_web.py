"""The console's pages and live stream over HTTP, with tokens the real registry issued."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

import httpx
import pytest

from sous_contracts.common import Severity, TestStatus
from sous_contracts.runs import CancelOrderRun, OrderRunStarted
from sous_contracts.steps import StepSkipped, StepStarted
from sous_contracts.tests import TestResult
from sous_contracts.topics import ORDER_RUN_COMMANDS
from tests.console.integration.test_read_model import until
from tests.domain_registry.conftest import read_topic
from tests.scheduler.standins import send

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@contextlib.asynccontextmanager
async def signed_in(console, scopes: dict[str, list[str]]):
    """A client signed in with a new token of `scopes`; yields the client and the token."""
    header = await console.registry.token(f"p{uuid.uuid4().hex[:6]}", scopes)
    token = header["Authorization"].removeprefix("Bearer ")
    async with httpx.AsyncClient(base_url=console.url, timeout=10) as client:
        r = await client.post("/sign-in", data={"token": token, "next": "/runs"})
        assert r.status_code == 303, r.text
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        yield client, token


async def a_running_run(console, kafka_settings) -> uuid.UUID:
    run_id = uuid.uuid4()
    where = {"domain": "sales", "recipe": "daily", "variation": "dev", "kitchen": "dev"}
    await send(
        kafka_settings,
        [
            OrderRunStarted(order_run_id=run_id, **where),
            StepStarted(
                order_run_id=run_id, step_run_id=uuid.uuid4(), step="load", attempt=1, worker_id="w"
            ),
        ],
    )
    await until(
        console.pool, "SELECT true FROM steps WHERE order_run_id = $1 AND status='running'", run_id
    )
    return run_id


async def test_sign_in_needs_a_token_the_registry_knows(console) -> None:
    async with httpx.AsyncClient(base_url=console.url) as client:
        r = await client.get("/runs")
        assert r.status_code == 303
        assert r.headers["location"].startswith("/sign-in")
        r = await client.post("/sign-in", data={"token": "sous_forged"})
        assert r.status_code == 401
        assert "unknown or revoked token" in r.text
        assert (await client.get("/events")).status_code == 401


async def test_reader_sees_runs_but_no_actions_and_a_forged_post_is_refused(
    console, kafka_settings
) -> None:
    run_id = await a_running_run(console, kafka_settings)
    async with signed_in(console, {"*": ["read"]}) as (client, token):
        page = await client.get("/runs")
        assert page.status_code == 200
        assert f'id="run-{run_id}"' in page.text
        assert token not in page.text
        run = await client.get(f"/runs/{run_id}")
        assert 'id="step-load-1"' in run.text
        assert token not in run.text
        assert 'id="cancel"' not in run.text
        assert 'id="again"' not in run.text
        forged = await client.post(f"/runs/{run_id}/cancel")
        assert forged.status_code == 403
        assert "lacks scope 'run'" in forged.json()["detail"]
        started = await client.post("/runs", data={"domain": "sales", "recipe": "daily"})
        assert started.status_code == 403


async def test_operator_cancels_from_the_run_page_through_the_registry(
    console, kafka_settings
) -> None:
    run_id = await a_running_run(console, kafka_settings)
    # The registry cancels runs of its own read model: wait until it knows this one.
    async with asyncio.timeout(20):
        while (await console.registry.client.get(f"/v1/runs/{run_id}")).status_code != 200:
            await asyncio.sleep(0.05)
    async with signed_in(console, {"sales": ["read", "run"]}) as (client, _):
        run = await client.get(f"/runs/{run_id}")
        assert 'id="cancel"' in run.text
        r = await client.post(f"/runs/{run_id}/cancel")
        assert r.status_code == 303, r.text
    commands = await read_topic(
        kafka_settings,
        ORDER_RUN_COMMANDS.full_name(kafka_settings.topic_prefix),
        until=lambda ms: any(isinstance(m, CancelOrderRun) for m in ms),
    )
    (cancel,) = [m for m in commands if isinstance(m, CancelOrderRun)]
    assert cancel.order_run_id == run_id


async def test_live_stream_follows_filters(console, kafka_settings) -> None:
    run_id = await a_running_run(console, kafka_settings)
    heard: list[dict] = []

    async def listen(client: httpx.AsyncClient) -> None:
        async with client.stream("GET", "/events?kind=test&severity=error&domain=sales") as r:
            assert r.status_code == 200
            event = None
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "ready":
                    ready.set()
                elif line.startswith("data:") and event == "test":
                    heard.append(json.loads(line.split(":", 1)[1]))
                    if any(h["test"] == "rows" for h in heard):
                        return

    ready = asyncio.Event()

    def result(test: str, severity: Severity, status: TestStatus) -> TestResult:
        return TestResult(
            order_run_id=run_id,
            step_run_id=uuid.uuid4(),
            suite_id=uuid.uuid4(),
            step="load",
            test=test,
            kind="metric",
            severity=severity,
            status=status,
            domain="sales",
            recipe="daily",
            kitchen="dev",
            value=0,
            threshold=1,
        )

    async with signed_in(console, {"*": ["read"]}) as (client, _):
        task = asyncio.create_task(listen(client))
        async with asyncio.timeout(10):
            await ready.wait()
        # A warning first, then the error: the stream filtered by severity shows only the error.
        await send(
            kafka_settings,
            [
                result("fresh", Severity.WARNING, TestStatus.WARNING),
                result("rows", Severity.ERROR, TestStatus.FAILED),
            ],
        )
        await asyncio.wait_for(task, 15)
    assert [(h["test"], h["status"]) for h in heard] == [("rows", "failed")]


async def test_the_run_page_shows_a_skipped_step_with_its_reason(console, kafka_settings) -> None:
    run_id = uuid.uuid4()
    where = {"domain": "sales", "recipe": "daily", "variation": "dev", "kitchen": "dev"}
    reason = "when 'params.publish' was false (params.publish = false)"
    await send(
        kafka_settings,
        [
            OrderRunStarted(order_run_id=run_id, **where),
            StepSkipped(
                order_run_id=run_id,
                step_run_id=uuid.uuid4(),
                step="publish",
                reason=reason,
                when="params.publish",
                seen={"params.publish": False},
            ),
        ],
    )
    await until(
        console.pool, "SELECT true FROM steps WHERE order_run_id = $1 AND status='skipped'", run_id
    )
    async with signed_in(console, {"*": ["read"]}) as (client, _):
        page = await client.get(f"/runs/{run_id}")
    assert 'id="step-publish-0" data-step="publish" data-status="skipped"' in page.text
    assert "skipped: when &#39;params.publish&#39; was false (params.publish = false)" in page.text
