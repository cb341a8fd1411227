"""The ops endpoint on its own: three paths, answers computed on the service's loop."""

from __future__ import annotations

import asyncio

from prometheus_client import Gauge

from sous_common.ops import OpsServer
from sous_common.settings import OpsSettings
from tests.ops import scrape, status, total

PROBED = Gauge("sous_test_probe_refreshes", "Refreshes run by the test's scrapes.")


async def test_paths_answer_from_the_loop_and_readiness_follows_its_checks() -> None:
    checks = {"started": False, "database": True}
    refreshes = 0

    async def readiness() -> dict[str, bool]:
        return dict(checks)

    async def refresh() -> None:
        nonlocal refreshes
        refreshes += 1
        PROBED.set(refreshes)

    server = OpsServer(
        OpsSettings(port=0, host="127.0.0.1"), asyncio.get_running_loop(), readiness, refresh
    )
    port = server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        assert port != 0
        assert await status(url, "/healthz") == 200
        assert await status(url, "/readyz") == 503
        checks["started"] = True
        assert await status(url, "/readyz") == 200
        samples = await scrape(url)
        assert total(samples, "sous_test_probe_refreshes") == 1  # refreshed before answering
        assert await status(url, "/nothing") == 404
    finally:
        await server.stop()


async def test_a_stuck_loop_is_not_alive_and_a_failing_check_is_not_ready() -> None:
    async def readiness() -> dict[str, bool]:
        raise ConnectionRefusedError("database away")

    async def refresh() -> None:
        pass

    other = asyncio.new_event_loop()  # never run: stands for a loop stuck in a handler
    server = OpsServer(
        OpsSettings(port=0, host="127.0.0.1", probe_timeout_s=0.2), other, readiness, refresh
    )
    url = f"http://127.0.0.1:{server.start()}"
    try:
        assert await status(url, "/healthz") == 503
    finally:
        await server.stop()
        other.close()
    server = OpsServer(
        OpsSettings(port=0, host="127.0.0.1"), asyncio.get_running_loop(), readiness, refresh
    )
    url = f"http://127.0.0.1:{server.start()}"
    try:
        assert await status(url, "/readyz") == 503
        assert await status(url, "/healthz") == 200
    finally:
        await server.stop()
