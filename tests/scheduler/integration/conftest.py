"""Fixtures: the scheduler running in-process on real Kafka and PostgreSQL, and its registry."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from sous_common.settings import DatabaseSettings
from sous_contracts.registry import EntityKind
from sous_scheduler.app import build
from sous_scheduler.settings import SchedulerSettings
from tests.conftest import drop_schemas
from tests.scheduler.standins import entity, send

KITCHENS = [
    entity(EntityKind.KITCHEN, "prod", {"kitchen": "prod"}),
    entity(EntityKind.KITCHEN, "dev", {"kitchen": "dev", "parent": "prod"}),
]


def recipe(domain: str, name: str, steps: dict, **extra) -> object:
    spec = {"recipe": name, "steps": steps, "variations": {"prod": {"kitchen": "prod"}}, **extra}
    return entity(EntityKind.RECIPE, name, spec, domain)


@contextlib.asynccontextmanager
async def run_scheduler(
    kafka_settings, servers, schema, clock=None, keep_schema=False, **overrides
) -> AsyncIterator[object]:
    """The scheduler in-process on a fresh schema; `overrides` change its settings.

    The schema is dropped when it stops, unless `keep_schema` (a restart follows).
    """
    settings = SchedulerSettings(
        **{"schema_name": schema, "dispatch_lease_s": 20, "timer_poll_s": 0.05, **overrides}
    )
    database = DatabaseSettings(url=servers.database_url)
    rt, service = build(settings, kafka_settings, database, clock=clock)
    try:
        async with rt.running():
            yield service
    finally:
        if not keep_schema:
            await drop(servers, schema)


async def drop(servers, schema: str) -> None:
    """Drop a scheduler's schema."""
    await drop_schemas(servers.database_url, schema)


@pytest.fixture
async def scheduler(kafka_settings, servers, schema) -> AsyncIterator[object]:
    async with run_scheduler(kafka_settings, servers, schema) as service:
        yield service


async def registry_ready(service, count: int) -> None:
    async with asyncio.timeout(20):
        while await service.rt.pool.fetchval("SELECT count(*) FROM registry") < count:
            await asyncio.sleep(0.05)


async def taken_in(pool, ids: list, timeout: float = 30) -> None:
    """Wait until the scheduler's inbox holds every one of these message ids."""
    async with asyncio.timeout(timeout):
        while await pool.fetchval(
            "SELECT count(*) FROM inbox WHERE message_id = ANY($1::uuid[])", ids
        ) < len(ids):
            await asyncio.sleep(0.05)


async def handled(service, messages: list) -> None:
    """Send messages and wait until the scheduler has taken each one in.

    A barrier too: the scheduler reads each partition in order, so once a message is taken
    in, every message before it on its partition has been handled.
    """
    await send(service.rt.kafka, messages)
    await taken_in(service.rt.pool, [m.message_id for m in messages])


def _domains_named(value: object) -> set[str]:
    if isinstance(value, dict):
        found = {v for k, v in value.items() if k == "domain" and isinstance(v, str)}
        return found.union(*(_domains_named(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_domains_named(v) for v in value))
    return set()


async def publish_registry(kafka_settings, service, entities: list) -> None:
    """Publish kitchens, the entities, and each domain they name that they do not hold (a
    real registry holds every domain; completions of unknown domains are refused)."""
    named = {e.name for e in entities if e.kind == EntityKind.DOMAIN}
    mentioned = {e.domain for e in entities if e.domain}.union(
        *(_domains_named(e.spec) for e in entities)
    )
    domains = sorted(mentioned - named)
    owners = [entity(EntityKind.DOMAIN, d, {"domain": d}) for d in domains]
    await send(kafka_settings, [*KITCHENS, *owners, *entities])
    await registry_ready(service, len(KITCHENS) + len(owners) + len(entities))


@contextlib.asynccontextmanager
async def nothing() -> AsyncIterator[None]:
    yield None
