"""Scheduler replicas as real processes (`faststream run`), their logs, and their schema."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg


async def scheduler_process(
    kafka_settings, servers, schema, log: Path | None = None, **settings: str
) -> asyncio.subprocess.Process:
    """Start one scheduler replica; its log (JSON lines) goes to `log` when given."""
    env = {
        **os.environ,
        "SOUS_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "SOUS_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "SOUS_DATABASE_URL": servers.database_url,
        "SOUS_SCHEDULER_SCHEMA_NAME": schema,
        "SOUS_SCHEDULER_TIMER_POLL_S": "0.1",
        "SOUS_SCHEDULER_DISPATCH_LEASE_S": "30",
        **{f"SOUS_SCHEDULER_{k.upper()}": v for k, v in settings.items()},
    }
    with contextlib.ExitStack() as files:
        out = files.enter_context(log.open("ab")) if log else asyncio.subprocess.DEVNULL
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "faststream",
            "run",
            "--factory",
            "sous_scheduler.app:create_app",
            env=env,
            stdout=out,
            stderr=out,
        )


def logged(log: Path, event: str) -> int:
    """How many times a replica logged this event."""
    lines = log.read_text().splitlines() if log.exists() else []
    return sum(json.loads(line).get("event") == event for line in lines if line.startswith("{"))


async def stop(
    proc: asyncio.subprocess.Process, signum: int = signal.SIGTERM, deadline: float = 20
) -> None:
    """Stop a process (`signum`, then SIGKILL after `deadline` seconds)."""
    if proc.returncode is None:
        proc.send_signal(signum)
        try:
            await asyncio.wait_for(proc.wait(), deadline)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@contextlib.asynccontextmanager
async def database(servers, schema: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection that sees a scheduler process's schema."""
    conn = await asyncpg.connect(servers.database_url, server_settings={"search_path": schema})
    try:
        yield conn
    finally:
        await conn.close()
