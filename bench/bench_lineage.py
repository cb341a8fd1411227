"""Lineage and impact queries over 10,000 runs, through the registry's REST API.

Seeds the registry's run read model with 10,000 runs: 900 fan-out trees of ten runs (a root,
three runs it triggered, two below each of those) and ten chains of a hundred runs, then
times the HTTP round trip on localhost (which bounds the server's time from above) of:

1. `lineage_both`: GET /v1/runs/{id}/lineage of a random run (up and down, full depth);
2. `impact_run`: GET /v1/impact/runs/{id} of a tree's root (nine downstream runs);
3. `impact_deep`: GET /v1/impact/runs/{id} of a chain's head (fifty hops, the walk's bound).

Must: p95 ≤ 100 ms each. The registry is served by uvicorn in this process on real Kafka and
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid

import asyncpg
import httpx
import uvicorn
from _common import (
    SIGNING_ENVIRONMENT,
    database_settings,
    emit,
    fresh_schema,
    kafka_settings,
    percentiles,
)
from pydantic import SecretStr

from sous.infra.procs import free_ports
from sous_common.logs import configure
from sous_common.topic_admin import ensure_topics
from sous_domain_registry.api import create_api
from sous_domain_registry.settings import RegistrySettings

TREES = 900
CHAINS, CHAIN_LENGTH = 10, 100
REQUESTS = 300
TOKEN = "bench-token"
DOMAINS = ["payments", "finance", "marketing", "sales", "risk"]
RUN_COLUMNS = ["order_run_id", "domain", "recipe", "variation", "kitchen", "status", "tests"]
RUN_COLUMNS += ["cause"]


def _run(run_id: uuid.UUID, depth: int, upstream: uuid.UUID | None) -> tuple:
    cause = (
        {"kind": "trigger", "trigger": "x/y#t", "upstream_order_run_ids": [str(upstream)]}
        if upstream
        else {"kind": "command", "principal": "bench"}
    )
    tests = json.dumps({"passed": 3, "failed": 0, "warnings": depth % 2})
    domain = DOMAINS[depth % len(DOMAINS)]
    return (run_id, domain, "make", "prod", "prod", "succeeded", tests, json.dumps(cause))


def seed() -> tuple[list[tuple], list[tuple], list[uuid.UUID], list[uuid.UUID]]:
    """Runs and edges of the trees and chains; the trees' roots and the chains' heads."""
    runs: list[tuple] = []
    edges: list[tuple] = []
    roots: list[uuid.UUID] = []
    heads: list[uuid.UUID] = []

    def add(depth: int, upstream: uuid.UUID | None) -> uuid.UUID:
        run_id = uuid.uuid4()
        runs.append(_run(run_id, depth, upstream))
        if upstream is not None:
            edges.append((upstream, run_id, "trigger", "x/y#t"))
        return run_id

    for _ in range(TREES):
        root = add(0, None)
        roots.append(root)
        for _ in range(3):
            child = add(1, root)
            for _ in range(2):
                add(2, child)
    for _ in range(CHAINS):
        head = previous = add(0, None)
        heads.append(head)
        for depth in range(1, CHAIN_LENGTH):
            previous = add(depth, previous)
    return runs, edges, roots, heads


async def timed(client: httpx.AsyncClient, routes: list[str]) -> list[float]:
    samples: list[float] = []
    for route in routes:
        began = time.perf_counter()
        r = await client.get(route)
        samples.append((time.perf_counter() - began) * 1000)
        assert r.status_code == 200, r.text
    return samples


async def main() -> None:
    configure("bench-lineage", level="WARNING")
    os.environ.update(SIGNING_ENVIRONMENT)
    kafka = kafka_settings()
    database = database_settings()
    await ensure_topics(kafka)
    schema = fresh_schema()
    port = free_ports(1)[0]
    settings = RegistrySettings(
        port=port,
        schema_name=schema,
        admin_token=SecretStr(TOKEN),
        kafka=kafka,
        database=database,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_api(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(60):
            while not server.started:
                await asyncio.sleep(0.05)
        runs, edges, roots, heads = seed()
        conn = await asyncpg.connect(database.url)
        await conn.copy_records_to_table(
            "runs",
            schema_name=schema,
            records=runs,
            columns=[
                "order_run_id",
                "domain",
                "recipe",
                "variation",
                "kitchen",
                "status",
                "tests",
                "cause",
            ],
        )
        await conn.copy_records_to_table(
            "run_edges",
            schema_name=schema,
            records=edges,
            columns=["upstream", "downstream", "kind", "trigger"],
        )
        await conn.execute(f'ANALYZE "{schema}".runs, "{schema}".run_edges')
        await conn.close()
        headers = {"Authorization": f"Bearer {TOKEN}"}
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            rng = random.Random(7)
            ids = [r[0] for r in runs]
            await timed(client, [f"/v1/runs/{i}/lineage" for i in rng.sample(ids, 20)])  # warm
            figures = {
                "both": [f"/v1/runs/{i}/lineage" for i in rng.sample(ids, REQUESTS)],
                "impact_run": [f"/v1/impact/runs/{rng.choice(roots)}" for _ in range(REQUESTS)],
                "impact_deep": [f"/v1/impact/runs/{rng.choice(heads)}" for _ in range(REQUESTS)],
            }
            for name, routes in figures.items():
                samples = await timed(client, routes)
                p95 = sorted(samples)[int(len(samples) * 0.95) - 1]
                emit(
                    f"lineage_{name}",
                    runs=len(runs),
                    requests=len(routes),
                    p95_ms=round(p95, 3),
                    must_p95_ms=100,
                    **percentiles(samples),
                )
    finally:
        server.should_exit = True
        await task


if __name__ == "__main__":
    asyncio.run(main())
