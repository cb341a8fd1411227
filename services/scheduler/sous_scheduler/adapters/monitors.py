"""PostgreSQL rows of monitors: their latest results and the trigger firings they hold."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sous_common.db import AnyConnection
from sous_contracts.runs import DomainRunCompleted
from sous_contracts.specs import DomainSpec, RecipeSpec
from sous_contracts.tests import TestSuiteFinished
from sous_scheduler.domain.monitors import Health


async def domains(conn: AnyConnection) -> list[tuple[str, DomainSpec]]:
    """Every live domain spec of the registry view."""
    rows = await conn.fetch(
        "SELECT name, spec FROM registry WHERE kind = 'domain' AND NOT deleted"
        " AND kitchen IS NULL ORDER BY name"
    )
    return [(r["name"], DomainSpec.model_validate(json.loads(r["spec"]))) for r in rows]


async def recipe(conn: AnyConnection, domain: str, name: str, kitchen: str) -> RecipeSpec | None:
    """The recipe a run in `kitchen` ran: the kitchen's own version, else the base."""
    found = await conn.fetchval(
        "SELECT spec FROM registry WHERE kind = 'recipe' AND domain = $1 AND name = $2"
        " AND NOT deleted AND (kitchen = $3 OR kitchen IS NULL)"
        " ORDER BY kitchen NULLS LAST LIMIT 1",
        domain,
        name,
        kitchen,
    )
    return RecipeSpec.model_validate(json.loads(found)) if found else None


async def record(conn: AnyConnection, monitor_id: str, suite: TestSuiteFinished) -> bool:
    """Keep a monitor's result when it is its latest; True when it was kept."""
    kept = await conn.fetchval(
        "INSERT INTO monitor_health (monitor_id, kitchen, dataset, passed, failed_tests,"
        " check_id, checked_at) VALUES ($1, $7, $2, $3, $4, $5, $6)"
        " ON CONFLICT (monitor_id, kitchen) DO UPDATE SET dataset = excluded.dataset,"
        " passed = excluded.passed, failed_tests = excluded.failed_tests,"
        " check_id = excluded.check_id, checked_at = excluded.checked_at"
        " WHERE monitor_health.checked_at <= excluded.checked_at RETURNING true",
        monitor_id,
        suite.dataset or "",
        not suite.blocking,
        list(suite.failed_tests),
        suite.suite_id,
        suite.occurred_at,
        suite.kitchen,
    )
    return bool(kept)


async def health(conn: AnyConnection, kitchen: str) -> dict[str, Health]:
    """The latest result of every monitor in a kitchen, by monitor id."""
    rows = await conn.fetch(
        "SELECT monitor_id, dataset, passed, failed_tests FROM monitor_health WHERE kitchen = $1",
        kitchen,
    )
    return {
        r["monitor_id"]: Health(r["dataset"], r["passed"], list(r["failed_tests"])) for r in rows
    }


async def hold(
    conn: AnyConnection,
    trigger_id: str,
    event: DomainRunCompleted,
    datasets: list[str],
    key: str | None,
    order_run_id: uuid.UUID,
) -> None:
    """Keep a firing, and the id of the run it starts, until the monitors of its datasets pass."""
    await conn.execute(
        "INSERT INTO held_firings (trigger_id, upstream_message_id, kitchen, datasets, event,"
        " key, order_run_id) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) ON CONFLICT DO NOTHING",
        trigger_id,
        event.message_id,
        event.kitchen,
        datasets,
        event.model_dump_json(),
        key,
        order_run_id,
    )


async def held(conn: AnyConnection, kitchen: str, dataset: str) -> list[Any]:
    """Firings held on a dataset in a kitchen, locked (other replicas skip them)."""
    return list(
        await conn.fetch(
            "SELECT trigger_id, upstream_message_id, datasets, event, key, order_run_id"
            " FROM held_firings"
            " WHERE kitchen = $1 AND $2 = ANY(datasets) ORDER BY held_at"
            " FOR UPDATE SKIP LOCKED",
            kitchen,
            dataset,
        )
    )


async def release(
    conn: AnyConnection, trigger_id: str, upstream: uuid.UUID, order_run_id: uuid.UUID
) -> bool:
    """Turn a held firing into a started one; False when it was released before."""
    released = await conn.fetchval(
        "DELETE FROM held_firings WHERE trigger_id = $1 AND upstream_message_id = $2"
        " RETURNING true",
        trigger_id,
        upstream,
    )
    if not released:
        return False
    await conn.execute(
        "UPDATE trigger_firings SET outcome = 'started', order_run_id = $3, fired_at = now()"
        " WHERE trigger_id = $1 AND upstream_message_id = $2",
        trigger_id,
        upstream,
        order_run_id,
    )
    return True
