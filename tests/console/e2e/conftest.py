"""The whole stack as `sous up` starts it, with the console, and headless Chromium (Debian's)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, async_playwright

from sous_common.settings import KafkaSettings
from sous_common.topic_admin import delete_topics
from tests.e2e.test_stack import ROOT, free_port

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / ".run" / "console"
"""Where the browser tests save a screenshot of each view."""

SLOW_DOMAIN = {
    "ops/domain.yaml": "domain: ops\ndescription: Stand-in work for the console's tests.\n",
    "ops/recipes/wait.yaml": (
        "recipe: wait\nsteps:\n  nap: {run: {kind: shell, argv: [sleep, '120']}, timeout: 5m}\n"
        "variations:\n  dev: {kitchen: dev}\n"
    ),
}
"""A recipe that runs long enough to be cancelled from the UI."""


@dataclass
class Stack:
    console: str
    registry: str
    token: str
    kafka: KafkaSettings

    def admin(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.registry, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )


@pytest.fixture(scope="module")
async def stack(servers, tmp_path_factory) -> AsyncIterator[Stack]:
    """`sous up` with the examples on topics and schemas of its own; stopped afterwards."""
    if not CHROMIUM.exists():  # noqa: ASYNC240 (once, before anything starts)
        pytest.fail("Debian's chromium is missing: `make sync` installs it (apt-get)")
    suffix = uuid.uuid4().hex[:8]
    prefix = f"t{suffix}."
    folder = tmp_path_factory.mktemp("stack")
    warehouse = f"e2e_{suffix}"
    admin = await asyncpg.connect(servers.database_url)
    await admin.execute(f"CREATE DATABASE {warehouse}")
    await admin.close()
    port, console_port = free_port(), free_port()
    schemas = {
        "SOUS_DOMAIN_REGISTRY_SCHEMA_NAME": f"reg_{suffix}",
        "SOUS_SCHEDULER_SCHEMA_NAME": f"sch_{suffix}",
        "SOUS_EXECUTOR_SCHEMA_NAME": f"exe_{suffix}",
        "SOUS_TEST_RUNNER_DB_SCHEMA": f"tst_{suffix}",
        "SOUS_CONSOLE_DB_SCHEMA": f"con_{suffix}",
    }
    env = {
        **os.environ,
        **schemas,
        "SOUS_KAFKA_BOOTSTRAP": servers.kafka_bootstrap,
        "SOUS_KAFKA_TOPIC_PREFIX": prefix,
        "SOUS_DATABASE_URL": servers.database_url,
        "SOUS_WAREHOUSE_DSN": servers.database_url.rsplit("/", 1)[0] + f"/{warehouse}",
        "SOUS_RUN_DIR": str(folder),
        "SOUS_REGISTRY_URL": f"http://127.0.0.1:{port}",
        "SOUS_DOMAIN_REGISTRY_PORT": str(port),
        "SOUS_CONSOLE_PORT": str(console_port),
    }
    up = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sous.cli",
        "up",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert up.stdout is not None
    said: list[str] = []
    try:
        async with asyncio.timeout(180):
            while not any("Ctrl-C here stops" in line for line in said):
                line = (await up.stdout.readline()).decode()
                assert line, "sous up ended early:\n" + "".join(said)
                said.append(line)
        text = "".join(said)
        found = re.search(r"ops console: (http://\S+)", text)
        assert found, text
        token = (folder / "stack" / "token").read_text().strip()
        # `sous up` waits for the registry; the console may still be starting.
        async with httpx.AsyncClient(timeout=5) as client, asyncio.timeout(60):
            while True:
                try:
                    if (await client.get(found.group(1) + "/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        yield Stack(
            found.group(1),
            f"http://127.0.0.1:{port}",
            token,
            KafkaSettings(bootstrap=servers.kafka_bootstrap, topic_prefix=prefix),
        )
    finally:
        if up.returncode is None:
            up.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(up.wait(), 60)
            except TimeoutError:
                up.kill()
        admin = await asyncpg.connect(servers.database_url)
        try:
            for schema in schemas.values():
                await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            await admin.execute(f"DROP DATABASE IF EXISTS {warehouse} WITH (FORCE)")
        finally:
            await admin.close()
        await delete_topics(KafkaSettings(bootstrap=servers.kafka_bootstrap), prefix)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium from the system (no browser is downloaded)."""
    async with async_playwright() as p:
        found = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield found
        finally:
            await found.close()
