"""Retention of what run lineage and monitors keep, on real PostgreSQL: held firings whose
trigger is gone, the last results of removed monitors and stale dataset uses go once older
than the setting; a firing still holding a declared trigger, its firing record and a declared
monitor's result stay, however old."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest

from sous_common.retention import COMMON_RULES, Purger
from sous_domain_registry.adapters import retention as registry_rules
from sous_scheduler.adapters import retention as scheduler_rules
from tests.common.integration import test_retention
from tests.common.integration.test_retention import NEW, OLD, SETTINGS

pytestmark = pytest.mark.postgres

SCHEDULER = ("scheduler", "sous_scheduler.migrations")
REGISTRY = ("domain-registry", "sous_domain_registry.migrations")

service_pool = test_retention.service_pool
"""The fixture of the retention tests: a fresh schema migrated for one service."""

CAMPAIGN = {
    "recipe": "campaign",
    "steps": {"a": {"run": {"kind": "noop"}}},
    # Named, then unnamed: ids `marketing/campaign#after-revenue` and `marketing/campaign#1`.
    "triggers": [
        {"name": "after-revenue", "on": {"domain": "finance"}, "require": "monitors_pass"},
        {"on": {"domain": "sales"}, "require": "monitors_pass"},
    ],
}
FINANCE = {"domain": "finance", "monitors": {"revenue-fresh": {"dataset": "wh.revenue"}}}


def purged(outcomes, *names: str) -> dict[str, int]:
    return {o.name: o.rows for o in outcomes or [] if o.name in names}


@pytest.mark.parametrize("service_pool", [SCHEDULER], indirect=True)
async def test_scheduler_purges_expired_holds_and_removed_monitors_never_live_ones(
    service_pool, schema
) -> None:
    async def entity(kind: str, domain: str | None, name: str, spec: dict, deleted=False) -> None:
        await conn.execute(
            "INSERT INTO registry (entity_id, kind, domain, name, version, spec, deleted)"
            " VALUES ($1, $2, $3, $4, 'v1', $5::jsonb, $6)",
            f"{kind}:{domain}/{name}",
            kind,
            domain,
            name,
            json.dumps(spec),
            deleted,
        )

    async def hold(trigger_id: str, at: datetime) -> uuid.UUID:
        upstream = uuid.uuid4()
        await conn.execute(
            "INSERT INTO held_firings (trigger_id, upstream_message_id, order_run_id, kitchen,"
            " datasets, event, held_at) VALUES ($1, $2, $3, 'prod', '{wh.revenue}', '{}', $4)",
            trigger_id,
            upstream,
            uuid.uuid4(),
            at,
        )
        await conn.execute(
            "INSERT INTO trigger_firings (trigger_id, upstream_message_id, outcome, fired_at)"
            " VALUES ($1, $2, 'held: monitor failed', $3)",
            trigger_id,
            upstream,
            at,
        )
        return upstream

    async def health(monitor_id: str, at: datetime) -> None:
        await conn.execute(
            "INSERT INTO monitor_health (monitor_id, kitchen, dataset, passed, check_id,"
            " checked_at) VALUES ($1, 'prod', 'wh.revenue', false, $2, $3)",
            monitor_id,
            uuid.uuid4(),
            at,
        )

    async with service_pool.acquire() as conn:
        await entity("recipe", "marketing", "campaign", CAMPAIGN)
        await entity("recipe", "marketing", "gone", {**CAMPAIGN, "recipe": "gone"}, deleted=True)
        await entity("domain", None, "finance", FINANCE)
        holding = {
            await hold("marketing/campaign#after-revenue", OLD),  # declared: holds, however old
            await hold("marketing/campaign#1", OLD),  # declared by its index
            await hold("marketing/campaign#renamed", NEW),  # gone, but newer than the setting
        }
        expired = {
            await hold("marketing/campaign#renamed", OLD),  # the trigger was removed
            await hold("marketing/campaign#3", OLD),  # no such index
            await hold("marketing/gone#after-revenue", OLD),  # the recipe was deleted
        }
        await health("finance/revenue-fresh", OLD)  # declared: a hold reads it
        await health("finance/removed", NEW)
        await health("finance/removed-long-ago", OLD)
        await health("sales/orders", OLD)  # its domain is not declared at all

    purger = Purger(
        service_pool, schema=schema, rules=COMMON_RULES + scheduler_rules.RULES, settings=SETTINGS
    )
    names = ("held_firings", "monitor_health", "trigger_firings")
    preview = purged(await purger.preview(), *names)
    # The expired holds' firing records go only after the holds: the next purge takes them.
    assert preview == {"held_firings": 3, "monitor_health": 2, "trigger_firings": 0}
    assert purged(await purger.purge(), *names) == preview

    async with service_pool.acquire() as conn:
        held = {r[0] for r in await conn.fetch("SELECT upstream_message_id FROM held_firings")}
        assert held == holding
        monitors = {r[0] for r in await conn.fetch("SELECT monitor_id FROM monitor_health")}
        assert monitors == {"finance/revenue-fresh", "finance/removed"}
    assert purged(await purger.purge(), *names) == {
        "held_firings": 0,
        "monitor_health": 0,
        "trigger_firings": 3,  # the old firing records of the expired holds
    }
    async with service_pool.acquire() as conn:
        fired = {r[0] for r in await conn.fetch("SELECT upstream_message_id FROM trigger_firings")}
    # A firing still held keeps its record: its release updates it, and it stops a replay.
    assert fired == holding
    assert not expired & fired


@pytest.mark.parametrize("service_pool", [REGISTRY], indirect=True)
async def test_registry_purges_stale_dataset_uses_and_removed_monitors_health(
    service_pool, schema
) -> None:
    async def use(dataset: str, at: datetime) -> None:
        await conn.execute(
            "INSERT INTO dataset_uses (dataset, role, domain, recipe, step, kitchen,"
            " order_run_id, status, at) VALUES ($1, 'writes', 'finance', 'revenue', 'load',"
            " 'prod', $2, 'succeeded', $3)",
            dataset,
            uuid.uuid4(),
            at,
        )

    async def health(domain: str, monitor: str, at: datetime) -> None:
        await conn.execute(
            "INSERT INTO monitor_health (domain, monitor, kitchen, dataset, passed, summary,"
            " results, check_id, at) VALUES ($1, $2, 'prod', 'wh.revenue', true, '{}', '{}',"
            " $3, $4)",
            domain,
            monitor,
            uuid.uuid4(),
            at,
        )

    async with service_pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO entities (entity_id, kind, domain, name, version, spec)"
            " VALUES ('domain:finance', 'domain', NULL, 'finance', 'v1', $1::jsonb)",
            json.dumps(FINANCE),
        )
        await use("wh.revenue", NEW)
        await use("wh.old_revenue", OLD)  # no run of that step touched it for that long
        await health("finance", "revenue-fresh", OLD)  # declared
        await health("finance", "removed", OLD)
        await health("finance", "removed-lately", NEW)

    purger = Purger(
        service_pool, schema=schema, rules=COMMON_RULES + registry_rules.RULES, settings=SETTINGS
    )
    outcomes = await purger.purge()
    assert purged(outcomes, "dataset_uses", "monitor_health") == {
        "dataset_uses": 1,
        "monitor_health": 1,
    }
    async with service_pool.acquire() as conn:
        uses = {r[0] for r in await conn.fetch("SELECT dataset FROM dataset_uses")}
        monitors = {r[0] for r in await conn.fetch("SELECT monitor FROM monitor_health")}
    assert uses == {"wh.revenue"}
    assert monitors == {"revenue-fresh", "removed-lately"}
