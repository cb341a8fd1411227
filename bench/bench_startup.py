"""Service start-up (DESIGN §6): time until `/readyz` answers 200, and the idle RSS after.

Each service is started alone, as its own process the way `sous up` starts it, against the
real broker and database: first on a fresh schema (migrations, new consumer groups), then
again on the same schema (a restart), `BENCH_ROUNDS` (3) times each, and reports the
medians. Prints one JSON line per service with the machine's core count. `BENCH_IDLE_S` (3)
is how long a ready service idles before its RSS is read.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from _common import SIGNING_ENVIRONMENT, database_settings, emit, fresh_schema, kafka_settings

from sous.environments import service_environment
from sous.infra.procs import free_ports
from sous.supervisor import SERVICES
from sous_common.settings import KafkaSettings
from sous_common.topic_admin import delete_topics, ensure_topics

IDLE_S = float(os.environ.get("BENCH_IDLE_S", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
READY_BUDGET_S = 3.0
RSS_BUDGET_MIB = 120.0
SCHEMA_VARIABLES = {
    "domain-registry": "SOUS_DOMAIN_REGISTRY_SCHEMA_NAME",
    "scheduler": "SOUS_SCHEDULER_SCHEMA_NAME",
    "executor": "SOUS_EXECUTOR_SCHEMA_NAME",
    "test-runner": "SOUS_TEST_RUNNER_DB_SCHEMA",
    "console": "SOUS_CONSOLE_DB_SCHEMA",
}


def environment(name: str, prefix: str, database_url: str) -> dict[str, str]:
    """What `sous up` would give service `name`, on a fresh schema and free ports."""
    registry = free_ports(1)[0]
    merged = {
        **os.environ,
        **SIGNING_ENVIRONMENT,
        "SOUS_KAFKA_TOPIC_PREFIX": prefix,
        "SOUS_DATABASE_URL": database_url,
        "SOUS_OPS_HOST": "127.0.0.1",
        "SOUS_OPS_PORT": str(free_ports(1)[0]),
        SCHEMA_VARIABLES[name]: fresh_schema(),
        "SOUS_DOMAIN_REGISTRY_PORT": str(registry),
        "SOUS_DOMAIN_REGISTRY_ADMIN_TOKEN": uuid.uuid4().hex,
        "SOUS_CONSOLE_PORT": str(free_ports(1)[0]),
        "SOUS_CONSOLE_REGISTRY_URL": f"http://127.0.0.1:{registry}",
    }
    return service_environment(name, merged)


def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start(name: str, env: dict[str, str]) -> tuple[float, float]:
    """Start the service, return (seconds until ready, RSS once idle); stop it again."""
    url = f"http://127.0.0.1:{env['SOUS_OPS_PORT']}/readyz"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *SERVICES[name]],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        with httpx.Client(timeout=1) as client:
            while True:
                if proc.poll() is not None:
                    sys.exit(f"{name} exited with {proc.returncode} before it was ready")
                try:
                    if client.get(url).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.perf_counter() - t0 > 60:
                    sys.exit(f"{name} not ready after 60 s")
                time.sleep(0.01)
        ready = time.perf_counter() - t0
        time.sleep(IDLE_S)  # idle: nothing is sent to it
        return ready, rss_mib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def clean_up(kafka: KafkaSettings, database_url: str, schemas: list[str]) -> None:
    """Drop the schemas and topics the services were given."""
    conn = await asyncpg.connect(database_url)
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
    await delete_topics(kafka, kafka.topic_prefix)


def main() -> None:
    kafka, db = kafka_settings(), database_settings()
    asyncio.run(ensure_topics(kafka))
    schemas: list[str] = []
    try:
        for name in SERVICES:
            measure(name, kafka.topic_prefix, db.url, schemas)
    finally:
        asyncio.run(clean_up(kafka, db.url, schemas))


def measure(name: str, prefix: str, database_url: str, schemas: list[str]) -> None:
    """Start one service `ROUNDS` times fresh and restarted; print its line."""
    fresh: list[float] = []
    restarted: list[float] = []
    rss: list[float] = []
    for _ in range(ROUNDS):
        env = environment(name, prefix, database_url)
        schemas.append(env[SCHEMA_VARIABLES[name]])
        for times in (fresh, restarted):  # the second on the same schema and groups
            ready, idle_rss = start(name, env)
            times.append(ready)
            rss.append(idle_rss)
    ready_s, restart_s = statistics.median(fresh), statistics.median(restarted)
    emit(
        "service_startup",
        service=name,
        cpu_count=os.cpu_count(),
        rounds=ROUNDS,
        ready_s=round(ready_s, 3),
        ready_restart_s=round(restart_s, 3),
        ready_max_s=round(max(fresh + restarted), 3),
        idle_rss_mib=round(max(rss), 1),
        within_budget=max(ready_s, restart_s) <= READY_BUDGET_S and max(rss) <= RSS_BUDGET_MIB,
    )


if __name__ == "__main__":
    main()
