"""The whole stack as `sous up` starts it, with the console, and headless Chromium (Debian's)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, async_playwright

from sous_common.settings import KafkaSettings
from sous_common.topic_admin import delete_topics
from tests.sous_up import ROOT, sous_up, warehouse_database

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / ".run" / "console"
"""Where the browser tests save a screenshot of each view."""

SLOW_DOMAIN = {
    "ops/domain.yaml": "domain: ops\ndescription: Stand-in work for the console's tests.\n",
    "ops/recipes/wait.yaml": (
        "recipe: wait\nsteps:\n  nap: {run: {kind: shell, argv: [sleep, '120']}, timeout: 5m}\n"
        "variations:\n  dev: {kitchen: dev}\n"
    ),
    "ops/recipes/gated.yaml": (
        "recipe: gated\n"
        "params:\n  day: {type: date, required: true}\n  gate: {type: string, required: true}\n"
        "steps:\n  hold:\n    run: {kind: shell, argv: [sh, -c, "
        "'while [ ! -e \"$0\" ]; do sleep 0.05; done', '${params.gate}']}\n    timeout: 5m\n"
        "variations:\n  dev: {kitchen: dev}\n"
    ),
}
"""Recipes that run long enough to be cancelled from the UI (`wait`), or until the test lets
them end by creating the file their `gate` names (`gated`)."""


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
    prefix = f"t{uuid.uuid4().hex[:8]}."
    kafka = KafkaSettings(bootstrap=servers.kafka_bootstrap, topic_prefix=prefix)
    folder = tmp_path_factory.mktemp("stack")
    try:
        async with (
            warehouse_database(servers.database_url) as warehouse,
            sous_up(servers.database_url, kafka, warehouse, folder, timeout=180) as up,
        ):
            # `sous up` waits for the registry; the console may still be starting.
            async with httpx.AsyncClient(timeout=5) as client, asyncio.timeout(60):
                while True:
                    try:
                        if (await client.get(up.console + "/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
            yield Stack(up.console, up.registry, up.token, kafka)
    finally:
        await delete_topics(kafka, prefix)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium from the system (no browser is downloaded)."""
    async with async_playwright() as p:
        found = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield found
        finally:
            await found.close()
