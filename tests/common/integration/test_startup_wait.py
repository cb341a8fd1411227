"""A service started while PostgreSQL or Kafka is away waits for it instead of exiting."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from sous.infra.procs import free_ports
from sous_common.runtime import Runtime
from sous_common.settings import DatabaseSettings

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


async def _flaky_relay(
    port: int, host: str | None, target: int | None
) -> tuple[asyncio.Server, list[int]]:
    """A server at `port` that closes the first two connections, then relays to the target."""
    refusals = [0]

    async def gate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if refusals[0] < 2:
            refusals[0] += 1
            writer.close()
            return
        server_reader, server_writer = await asyncio.open_connection(host, target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, server_writer), pipe(server_reader, writer))

    return await asyncio.start_server(gate, "127.0.0.1", port), refusals


async def test_a_service_waits_for_the_database_to_come_up(
    db_settings, kafka_settings, schema
) -> None:
    real = urlsplit(db_settings.url)
    port = free_ports(1)[0]
    server, refusals = await _flaky_relay(port, real.hostname, real.port)
    netloc = real.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    url = urlunsplit(real._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) > 1 else host))
    rt = Runtime(
        "waiter",
        kafka_settings,
        DatabaseSettings(url=url, pool_max=2),
        schema=schema,
    )
    try:
        await asyncio.wait_for(rt._open(), 30)
        assert refusals[0] == 2
        assert await rt.pool.fetchval("SELECT count(*) FROM inbox") == 0  # migrated
    finally:
        await rt._close()
        server.close()
        conn = await asyncpg.connect(db_settings.url)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def test_a_service_waits_for_the_broker_to_come_up(
    db_settings, kafka_settings, schema
) -> None:
    host, real_port = kafka_settings.bootstrap.split(",")[0].rsplit(":", 1)
    port = free_ports(1)[0]
    server, refusals = await _flaky_relay(port, host, int(real_port))
    opened: list[bool] = []
    rt = Runtime(
        "waiter",
        kafka_settings.model_copy(update={"bootstrap": f"127.0.0.1:{port}"}),
        DatabaseSettings(url=db_settings.url, pool_max=2),
        schema=schema,
    )

    @rt.on_opened
    async def needs_the_broker() -> None:
        opened.append(True)

    try:
        await asyncio.wait_for(rt._open(), 30)
        assert refusals[0] == 2  # the broker was away twice, and the service waited
        assert opened == [True]
    finally:
        await rt._close()
        server.close()
        conn = await asyncpg.connect(db_settings.url)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def test_stopping_closes_connections_a_task_never_gave_back(
    db_settings, kafka_settings, schema
) -> None:
    """A connection still held at stop is closed anyway: its locks do not outlive the service."""
    rt = Runtime("holder", kafka_settings, DatabaseSettings(url=db_settings.url), schema=schema)
    rt.pool_close_s = 0.5
    await rt._open()
    held = await rt.pool.acquire()  # never released, as by a task that hung
    await held.execute("BEGIN; LOCK TABLE inbox")
    try:
        await asyncio.wait_for(rt._close(), 10)
    finally:
        conn = await asyncpg.connect(db_settings.url)
        try:
            await conn.execute("SET lock_timeout = '5s'")
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # the lock is gone
        finally:
            await conn.close()
