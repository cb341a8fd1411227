"""Console benchmarks: the Runs view with 10,000 runs, and TestResult → shown in a browser.

1. `console_runs_view`: GET /runs (first page, a domain filter, a deep page) with 10,000
   runs in the read model; time of the whole HTTP round trip on localhost, which bounds
   the server's time from above. Must: p95 ≤ 200 ms.
2. `console_live_test_result`: TestResults produced at a fixed 50/s to the real broker;
   headless Chromium (Debian's) holds the Tests view open; each row's appearance is noted
   by the page and compared with the record's broker timestamp. Must: p95 ≤ 300 ms.

The console runs as its own process (`python -m sous_console`); the registry is stood in by
an HTTP answer to `GET /v1/whoami` (the console asks it once, then keeps the answer); Kafka
and PostgreSQL are the real servers.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid

import asyncpg
import httpx
import uvicorn
from _common import database_settings, emit, fresh_schema, kafka_settings, percentiles
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Header
from playwright.async_api import async_playwright

from sous.infra.procs import free_ports
from sous_common.kafka import aiokafka_options
from sous_common.logs import configure
from sous_common.topic_admin import ensure_topics
from sous_contracts.common import Severity, TestStatus
from sous_contracts.tests import TestResult
from sous_contracts.topics import TEST_RESULTS

RUNS = 10_000
REQUESTS = 200
RATE = 50.0
SECONDS = 10.0
TOKEN = "bench-token"


def whoami(authorization: str = Header()) -> dict:
    assert authorization == f"Bearer {TOKEN}"
    return {"principal": "bench", "scopes": {"*": ["admin"]}}


def p95(samples: list[float]) -> float:
    """The 95th percentile the issue's budgets name."""
    return round(statistics.quantiles(samples, n=100, method="inclusive")[94], 3)


SEED = """
INSERT INTO runs (order_run_id, domain, recipe, variation, kitchen, status, started_at,
    finished_at, tests_pass, tests_fail, tests_warn, seen_at)
SELECT gen_random_uuid(), 'domain' || (i % 10), 'recipe' || (i % 5), 'dev',
    CASE WHEN i % 3 = 0 THEN 'prod' ELSE 'dev' END,
    CASE WHEN i % 7 = 0 THEN 'failed' ELSE 'succeeded' END,
    now() - make_interval(secs => i * 60), now() - make_interval(secs => i * 60 - 30),
    i % 6, (i % 7 = 0)::int, i % 2, now() - make_interval(secs => i * 60)
FROM generate_series(1, $1) AS i
"""


async def runs_view(client: httpx.AsyncClient) -> None:
    for path in ("/runs", "/runs?domain=domain3", "/runs?page=150", "/runs?status=failed"):
        samples = []
        for _ in range(REQUESTS // 4):
            t0 = time.perf_counter()
            r = await client.get(path)
            samples.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, r.text
        emit(
            "console_runs_view",
            path=path,
            runs=RUNS,
            requests=len(samples),
            p95_ms=p95(samples),
            **percentiles(samples),
        )


async def live_results(url: str, kafka) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = await browser.new_page()
        await page.goto(url + "/sign-in")
        await page.fill("#token", TOKEN)
        await page.click("button[type=submit]")
        await page.goto(url + "/tests")
        await page.wait_for_function("document.getElementById('live').textContent === '● live'")
        await page.evaluate(
            """() => { window.__seen = {};
            new MutationObserver(ms => { const now = Date.now();
              for (const m of ms) for (const n of m.addedNodes)
                if (n.dataset && n.dataset.message) window.__seen[n.dataset.message] = now; })
            .observe(document.querySelector('#results tbody'), {childList: true}); }"""
        )
        heard: dict[str, int] = {}
        listener = await asyncpg.connect(database_settings().url)
        await listener.add_listener(
            "sous_console",
            lambda *a: heard.__setitem__(
                json.loads(a[3]).get("message_id", ""), int(time.time() * 1000)
            ),
        )
        producer = AIOKafkaProducer(**aiokafka_options(kafka), acks="all", linger_ms=0)
        await producer.start()
        produced: dict[str, int] = {}
        try:
            runs = [uuid.uuid4() for _ in range(25)]  # results of many runs, as in a mesh
            loop = asyncio.get_running_loop()
            start = loop.time()
            sends = []
            for i in range(int(RATE * SECONDS)):
                await asyncio.sleep(max(0.0, start + i / RATE - loop.time()))
                m = TestResult(
                    order_run_id=runs[i % len(runs)],
                    step_run_id=uuid.uuid4(),
                    suite_id=uuid.uuid4(),
                    step="load",
                    test=f"t{i % 20}",
                    kind="metric",
                    severity=Severity.ERROR if i % 2 else Severity.WARNING,
                    status=TestStatus.FAILED if i % 2 else TestStatus.PASSED,
                    domain="sales",
                    recipe="daily",
                    kitchen="dev",
                    value=i,
                    threshold=0,
                )
                future = await producer.send(
                    TEST_RESULTS.full_name(kafka.topic_prefix), m.to_json(), key=m.kafka_key()
                )
                sends.append((str(m.message_id), future))
            for message_id, future in sends:
                produced[message_id] = (await future).timestamp
        finally:
            await producer.stop()
        deadline = time.monotonic() + 30
        seen: dict[str, int] = {}
        while time.monotonic() < deadline:
            seen = await page.evaluate("window.__seen")
            if len(seen) >= len(produced):
                break
            await asyncio.sleep(0.2)
        await browser.close()
    committed = [float(heard[k] - ts) for k, ts in produced.items() if k in heard]
    emit("console_read_model_notified", rate_per_s=RATE, **percentiles(committed))
    latencies = [float(seen[k] - ts) for k, ts in produced.items() if k in seen]
    emit(
        "console_live_test_result",
        rate_per_s=RATE,
        produced=len(produced),
        shown=len(latencies),
        p95_ms=p95(latencies),
        **percentiles(latencies),
    )


async def main() -> None:
    configure("bench-console", level="WARNING")
    kafka = kafka_settings()
    database = database_settings()
    await ensure_topics(kafka, partitions=6)
    schema = fresh_schema()
    # The registry's one answer the console needs, served in this process.
    registry = FastAPI()
    registry.get("/v1/whoami")(whoami)
    registry_port, port = free_ports(2)
    server = uvicorn.Server(
        uvicorn.Config(registry, host="127.0.0.1", port=registry_port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    # The console runs as its own process, as `make up` runs it.
    env = {
        **os.environ,
        "SOUS_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "SOUS_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "SOUS_DATABASE_URL": database.url,
        "SOUS_CONSOLE_DB_SCHEMA": schema,
        "SOUS_CONSOLE_PORT": str(port),
        "SOUS_CONSOLE_REGISTRY_URL": f"http://127.0.0.1:{registry_port}",
        "SOUS_CONSOLE_LOG_LEVEL": "WARNING",
    }
    console = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sous_console",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            async with asyncio.timeout(60):
                while True:
                    try:
                        if (await client.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
            conn = await asyncpg.connect(database.url)
            await conn.execute(f'SET search_path TO "{schema}"')
            await conn.execute(SEED, RUNS)
            await conn.close()
            await client.post("/sign-in", data={"token": TOKEN})
            await runs_view(client)
        await live_results(url, kafka)
    finally:
        console.terminate()
        await console.wait()
        server.should_exit = True
        await task


if __name__ == "__main__":
    asyncio.run(main())
