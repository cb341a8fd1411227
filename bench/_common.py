"""Helpers the benchmarks share: servers from the environment, fresh names, percentiles, output."""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from sous_common.settings import DatabaseSettings, KafkaSettings
from sous_common.topic_admin import delete_topics
from sous_common.trust import Signer

# Services a benchmark starts (in this process or as children) serve their ops endpoint on a
# port of their own: several share the machine, where 9400 is every service's default.
os.environ.setdefault("SOUS_OPS_PORT", "0")
os.environ.setdefault("SOUS_OPS_HOST", "127.0.0.1")

_KEYS = Path(tempfile.mkdtemp(prefix="sous-bench-keys-"))
SIGNER = Signer.generate("sous-scheduler")
"""The scheduler's key in a benchmark; the load it is sent is signed with it."""
SIGNER.save(_KEYS / "scheduler.pem")
_REGISTRY = Signer.generate("sous-domain-registry")
_REGISTRY.save(_KEYS / "domain-registry.pem")
SIGNING_ENVIRONMENT = {
    "SOUS_SCHEDULER_SIGNING_KEY_FILE": str(_KEYS / "scheduler.pem"),
    "SOUS_DOMAIN_REGISTRY_SIGNING_KEY_FILE": str(_KEYS / "domain-registry.pem"),
}
"""What the services a benchmark starts read to find their keys."""


def signed(value: bytes) -> list[tuple[str, bytes]]:
    """Return the headers that sign a record value as the scheduler."""
    return [(k, v.encode()) for k, v in SIGNER.headers(value).items()]


def kafka_settings() -> KafkaSettings:
    """Settings for the broker in SOUS_KAFKA_BOOTSTRAP with a fresh topic prefix."""
    if not os.environ.get("SOUS_KAFKA_BOOTSTRAP"):
        sys.exit("set SOUS_KAFKA_BOOTSTRAP (make bench does it)")
    settings = KafkaSettings(topic_prefix=f"bench{uuid.uuid4().hex[:8]}.")
    # Its topics go when the benchmark ends: a broker that piles up a run's partitions
    # after another's grows slower, and the figures of the next run with it.
    atexit.register(lambda: asyncio.run(delete_topics(settings, settings.topic_prefix)))
    return settings


def database_settings() -> DatabaseSettings:
    """Settings for the server in SOUS_DATABASE_URL."""
    if not os.environ.get("SOUS_DATABASE_URL"):
        sys.exit("set SOUS_DATABASE_URL (make bench does it)")
    return DatabaseSettings()


def fresh_schema() -> str:
    """A schema name of its own, dropped when the benchmark ends."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    atexit.register(lambda: asyncio.run(_drop(schema)))
    return schema


async def _drop(schema: str) -> None:
    conn = await asyncpg.connect(database_settings().url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50/p90/p99/max of a list of milliseconds."""
    cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49], 3),
        "p90_ms": round(cuts[89], 3),
        "p99_ms": round(cuts[98], 3),
        "max_ms": round(max(samples_ms), 3),
    }


def _stat(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name (Linux): [0] is the state."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process and its descendants have used so far.

    A live descendant counts its own time; one that ended counts in its parent's children
    time once waited for. So an executor's step processes, forked by its warm servers,
    count as the executor's.
    """
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                children.setdefault(int(_stat(proc.name)[1]), []).append(int(proc.name))
            except OSError:  # ended while being read
                continue
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = _stat(current)
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        todo.extend(children.get(current, []))
    return total / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds(pid: int | str) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds() -> dict[str, float]:
    """CPU time so far of the machine's PostgreSQL processes (every backend) and Kafka's JVM.

    Backends that ended meanwhile are not counted; the services' pools keep theirs open.
    """
    spent = {"postgres": 0.0, "kafka": 0.0}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            comm = (proc / "comm").read_text().strip()
            if comm == "postgres":
                spent["postgres"] += _own_cpu_seconds(proc.name)
            elif comm == "java" and b"kafka" in (proc / "cmdline").read_bytes():
                spent["kafka"] += _own_cpu_seconds(proc.name)
        except OSError:  # ended while being read
            continue
    return spent


def emit(bench: str, **figures: Any) -> None:
    """Print one JSON line for one figure."""
    print(json.dumps({"bench": bench, **figures}), flush=True)
