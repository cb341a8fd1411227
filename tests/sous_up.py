"""`sous up` as the end-to-end tests start it: the whole mesh as processes on schemas, ports and a
run folder of its own, read until it says it is ready, stopped and cleaned up afterwards."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from sous.infra.procs import free_ports
from sous_common.settings import KafkaSettings
from tests.scheduler.processes import stop

ROOT = Path(__file__).resolve().parents[1]

SCHEMAS = {
    "SOUS_DOMAIN_REGISTRY_SCHEMA_NAME": "reg",
    "SOUS_SCHEDULER_SCHEMA_NAME": "sch",
    "SOUS_EXECUTOR_SCHEMA_NAME": "exe",
    "SOUS_TEST_RUNNER_DB_SCHEMA": "tst",
    "SOUS_CONSOLE_DB_SCHEMA": "con",
}
"""Each service's schema setting, and the start of the schema name a stack gives it."""


@asynccontextmanager
async def warehouse_database(database_url: str) -> AsyncIterator[str]:
    """A database of its own for the examples' data; its DSN, dropped afterwards."""
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        yield database_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


@dataclass(frozen=True)
class Up:
    """A running `sous up`: what it printed until ready, and where to reach it."""

    env: dict[str, str]
    """The environment it runs with (the CLI reaches the stack with it)."""
    said: str
    """Everything it printed up to `Ctrl-C here stops`."""
    folder: Path
    """Its run folder (`SOUS_RUN_DIR`): `stack/token`, `stack/ops`, pid files."""
    registry: str
    """The registry's REST base URL."""

    @property
    def token(self) -> str:
        """The admin token `sous up` wrote."""
        return (self.folder / "stack" / "token").read_text().strip()

    @property
    def console(self) -> str:
        """The ops console's URL, as `sous up` printed it."""
        found = re.search(r"ops console: (http://\S+)", self.said)
        assert found, self.said
        return found.group(1)


@asynccontextmanager
async def sous_up(
    database_url: str,
    kafka: KafkaSettings,
    warehouse: str,
    folder: Path,
    *,
    env: Mapping[str, str] = {},
    timeout: float = 120,
) -> AsyncIterator[Up]:
    """Start `sous up` with the examples, read it until ready, stop it (SIGINT) and drop its
    schemas afterwards. `env` adds to the environment it runs with (tracing, say)."""
    suffix = uuid.uuid4().hex[:8]
    schemas = {setting: f"{start}_{suffix}" for setting, start in SCHEMAS.items()}
    port, console_port = free_ports(2)
    registry = f"http://127.0.0.1:{port}"
    full = {
        **os.environ,
        **schemas,
        "SOUS_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "SOUS_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "SOUS_DATABASE_URL": database_url,
        "SOUS_WAREHOUSE_DSN": warehouse,
        "SOUS_RUN_DIR": str(folder),
        "SOUS_REGISTRY_URL": registry,
        "SOUS_DOMAIN_REGISTRY_PORT": str(port),
        "SOUS_CONSOLE_PORT": str(console_port),
        **env,
    }
    up = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sous.cli",
        "up",
        cwd=ROOT,
        env=full,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert up.stdout is not None
    said: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            while not any("Ctrl-C here stops" in line for line in said):
                line = (await up.stdout.readline()).decode()
                assert line, "sous up ended early:\n" + "".join(said)
                said.append(line)
        yield Up(full, "".join(said), folder, registry)
    finally:
        await stop(up, signal.SIGINT, 60)  # as Ctrl-C stops it
        admin = await asyncpg.connect(database_url)
        try:
            for schema in schemas.values():
                await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await admin.close()
