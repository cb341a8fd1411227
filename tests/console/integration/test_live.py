"""The live stream outlives its database connection: it listens again and pages resync."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.console.integration.test_read_model import until
from tests.console.integration.test_web import a_running_run, signed_in

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

LISTENER = "SELECT pid FROM pg_stat_activity WHERE application_name = $1"


async def follow(client: httpx.AsyncClient, url: str, heard: asyncio.Queue) -> None:
    """Put each (event, data) of the stream in `heard` until the stream ends."""
    async with client.stream("GET", url) as r:
        assert r.status_code == 200
        event = None
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                await heard.put((event, json.loads(line.split(":", 1)[1])))


async def next_event(heard: asyncio.Queue, wanted: Any, timeout: float = 30.0) -> dict:
    """Return the data of the first event `wanted(event, data)` accepts."""
    async with asyncio.timeout(timeout):
        while True:
            event, data = await heard.get()
            if wanted(event, data):
                return data


async def test_the_stream_recovers_after_its_listener_is_terminated(
    console, kafka_settings
) -> None:
    name = f"sous-console live {console.schema}"
    heard: asyncio.Queue = asyncio.Queue()
    async with signed_in(console, {"*": ["read"]}) as (client, _):
        task = asyncio.create_task(follow(client, "/events?kind=step", heard))
        try:
            await next_event(heard, lambda e, _: e == "ready")
            pid = await until(console.pool, LISTENER, name)
            assert await console.pool.fetchval("SELECT pg_terminate_backend($1)", pid)

            # The barrier: the open stream is told to resync once the hub listens again.
            await next_event(heard, lambda e, _: e == "resync")
            again = await console.pool.fetchval(LISTENER, name)
            assert again is not None
            assert again != pid

            # And changes flow on the same stream again.
            run_id = await a_running_run(console, kafka_settings)
            step = await next_event(
                heard, lambda e, d: e == "step" and d.get("order_run_id") == str(run_id)
            )
            assert step["status"] == "running"
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
