"""A runtime's ops endpoint on real Kafka and PostgreSQL: `/readyz` says 503 until start-up
(its catch-up) is done and 200 after; `/metrics` moves as messages are handled, repeated,
refused and relayed."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import uuid
from typing import Annotated

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import Field

from sous_common import inbox
from sous_common.kafka import aiokafka_options
from sous_common.runtime import Runtime
from sous_contracts.runs import OrderRunStarted
from sous_contracts.steps import StepFinished, StepHeartbeat, StepStarted
from sous_contracts.testing import sample_messages
from sous_contracts.tests import TestResult
from sous_contracts.topics import STEP_EVENTS, TEST_RESULTS
from tests.ops import has, scrape, status, total

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

StepEvent = Annotated[StepStarted | StepHeartbeat | StepFinished, Field(discriminator="type")]


async def _until(check, timeout_s: float = 30) -> None:
    """Poll `check` (async, returns bool) until it holds, within a deadline."""
    async with asyncio.timeout(timeout_s):
        while not await check():
            await asyncio.sleep(0.1)


async def test_readyz_follows_start_up_and_metrics_move(kafka_settings, db_settings, schema):
    rt = Runtime("probe", kafka_settings, db_settings, schema=schema)
    entered, release, stop = asyncio.Event(), asyncio.Event(), asyncio.Event()
    consuming, go_on = asyncio.Event(), asyncio.Event()

    @rt.on_opened
    async def catch_up() -> None:  # stands for a service's start-up catch-up
        entered.set()
        await release.wait()

    @rt.on_started
    async def last_start_up_step() -> None:  # consumers run, start-up not done yet
        consuming.set()
        await go_on.wait()

    started = next(m for m in sample_messages() if isinstance(m, StepStarted))
    announced = next(m for m in sample_messages() if isinstance(m, OrderRunStarted))
    handled: list[uuid.UUID] = []

    @rt.broker.subscriber(rt.topic(STEP_EVENTS), **rt.subscriber_options())
    async def on_step_event(event: StepEvent) -> None:
        async with rt.pool.acquire() as conn, conn.transaction():
            if await inbox.claim(conn, rt.group_id, event.message_id):
                await rt.emit(conn, [announced.model_copy(update={"message_id": uuid.uuid4()})])
        handled.append(event.message_id)

    # A subscriber with several consumers (max_workers): each must be in the group.
    @rt.broker.subscriber(rt.topic(TEST_RESULTS), **rt.subscriber_options(), max_workers=2)
    async def on_test_event(event: TestResult) -> None:
        pass

    async def serve() -> None:
        async with rt.running():
            await stop.wait()

    service = asyncio.create_task(serve())
    try:
        async with asyncio.timeout(60):
            await entered.wait()
        url = f"http://127.0.0.1:{rt.ops_port}"
        # Held inside start-up: alive, not ready.
        assert await status(url, "/healthz") == 200
        assert await status(url, "/readyz") == 503
        release.set()
        async with asyncio.timeout(60):
            await consuming.wait()

        async def in_groups() -> bool:
            async with httpx.AsyncClient(timeout=10) as client:
                r = await client.get(f"{url}/readyz")
            body = r.json()
            assert r.status_code == 503, body  # start-up is not done: never ready here
            return bool(body["consumers"] and body["database"] and not body["started"])

        await _until(in_groups, 60)
        go_on.set()

        async def ready() -> bool:
            return await status(url, "/readyz") == 200

        await _until(ready, 60)
        before = await scrape(url)
        assert total(before, "sous_ready", service="probe") == 1

        message = started.model_copy(update={"message_id": uuid.uuid4()})
        topic = rt.topic(STEP_EVENTS)
        producer = AIOKafkaProducer(**aiokafka_options(kafka_settings), acks="all")
        await producer.start()
        try:
            for value in (message.to_json(), message.to_json(), b"{not json"):
                await producer.send_and_wait(topic, value, key=b"k", partition=0)
        finally:
            await producer.stop()

        group, labels = rt.group_id, {"group": rt.group_id, "topic": topic, "partition": "0"}
        after: dict = {}

        async def moved() -> bool:
            nonlocal after
            after = await scrape(url)
            return (
                total(after, "sous_dead_letters_total", consumer=group, reason="undecodable") >= 1
                and total(after, "sous_relay_published_total", schema=schema) >= 1
                and has(after, "sous_consumer_lag", **labels)
                and total(after, "sous_consumer_lag", **labels) == 0
            )

        await _until(moved)
        assert handled == [message.message_id, message.message_id]
        count = "sous_handle_seconds_count"
        assert (
            total(after, count, group=group, type="StepStarted")
            - total(before, count, group=group, type="StepStarted")
            == 2
        )
        assert (
            total(after, "sous_inbox_duplicates_total", consumer=group)
            - total(before, "sous_inbox_duplicates_total", consumer=group)
            == 1
        )
        assert total(after, "sous_relay_latency_seconds_count", schema=schema) >= 1
        assert has(after, "sous_outbox_backlog", schema=schema)
    finally:
        release.set()
        go_on.set()
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(service, 60)
    # Stopped: nothing listens on the ops port any more.
    with pytest.raises(Exception):  # noqa: B017, PT011  # connection refused, any client error
        await status(url, "/healthz")


async def test_what_start_up_built_is_out_of_the_collectors_way_while_serving(
    kafka_settings, db_settings, schema
):
    gc.unfreeze()
    rt = Runtime("probe", kafka_settings, db_settings, schema=schema)
    async with rt.running():
        assert gc.get_freeze_count() > 0, "start-up frozen once ready"
    assert gc.get_freeze_count() == 0, "collected again once stopped"
