"""Fixtures of the console's tests: a registry and the console on fresh topics and schemas."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
import uvicorn

from sous.infra.procs import free_ports
from sous_console.settings import ConsoleSettings
from sous_console.web.app import create_web
from tests.domain_registry.conftest import Registry, running_registry


@dataclass
class Console:
    url: str
    registry: Registry
    pool: asyncpg.Pool
    schema: str = ""


@pytest.fixture
async def console(kafka_settings, db_settings) -> AsyncIterator[Console]:
    """The registry (in process) and the console served by uvicorn on a free port."""
    suffix = uuid.uuid4().hex[:12]
    async with running_registry(kafka_settings, db_settings, f"r_{suffix}") as registry:
        schema = f"c_{suffix}"
        settings = ConsoleSettings(
            kafka=kafka_settings,
            database=db_settings,
            db_schema=schema,
            registry_url="http://registry",
            principal_cache_s=0,
        )
        app = create_web(
            settings, registry_transport=httpx.ASGITransport(app=registry_app(registry))
        )
        port = free_ports(1)[0]
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        task = asyncio.create_task(server.serve())
        try:
            async with asyncio.timeout(30):
                while not server.started:
                    if task.done():
                        task.result()
                    await asyncio.sleep(0.05)
            yield Console(f"http://127.0.0.1:{port}", registry, app.state.runtime.pool, schema)
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 30)
            admin = await asyncpg.connect(db_settings.url)
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await admin.close()


def registry_app(registry: Registry):
    """The registry's ASGI app, which the registry client's transport holds."""
    transport = registry.client._transport
    return transport.app
