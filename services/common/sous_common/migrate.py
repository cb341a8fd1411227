"""A small migrations runner: numbered SQL files per component, applied once, in order.

Each service keeps `NNNN_name.sql` files in its own `migrations` package; the shared
inbox and outbox tables come from this package's `migrations` folder as component `common`.
A session advisory lock lets several replicas start at once safely.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from sous_common.db import checked_schema

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    component: str
    version: int
    name: str
    sql: str


def load(component: str, package: str) -> list[Migration]:
    """Read the numbered SQL files of a package, sorted by version."""
    found = []
    for entry in resources.files(package).iterdir():
        if m := _FILE.match(entry.name):
            found.append(Migration(component, int(m.group(1)), m.group(2), entry.read_text()))
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise ValueError(f"migrations of {component} repeat a version: {sorted(versions)}")
    return sorted(found, key=lambda m: m.version)


async def migrate(conn: asyncpg.Connection, schema: str, migrations: list[Migration]) -> list[str]:
    """Create `schema` if needed and apply the pending migrations; return what was applied."""
    schema = checked_schema(schema)
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"sous-migrate:{schema}")
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
            " component text NOT NULL, version int NOT NULL, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (component, version))"
        )
        done = {
            (r["component"], r["version"])
            for r in await conn.fetch(
                f'SELECT component, version FROM "{schema}".schema_migrations'
            )
        }
        for m in migrations:
            if (m.component, m.version) in done:
                continue
            async with conn.transaction():
                await conn.execute(f'SET LOCAL search_path TO "{schema}", public')
                await conn.execute(m.sql)
                await conn.execute(
                    f'INSERT INTO "{schema}".schema_migrations (component, version, name)'
                    " VALUES ($1, $2, $3)",
                    m.component,
                    m.version,
                    m.name,
                )
            applied.append(f"{m.component}/{m.version:04d}_{m.name}")
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"sous-migrate:{schema}")
    return applied


def common_migrations() -> list[Migration]:
    """Return the shared tables' migrations (inbox, outbox)."""
    return load("common", "sous_common.migrations")
