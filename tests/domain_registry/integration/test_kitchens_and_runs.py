"""Kitchens (create, list, delete, merge) and the run read model fed from Kafka."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer

from sous_common.kafka import aiokafka_options
from sous_common.trust import verify
from sous_contracts.runs import StartOrderRun
from sous_contracts.topics import ORDER_RUN_COMMANDS, REGISTRY_CHANGELOG
from sous_domain_registry.adapters.trust import RegistryTrust
from tests.domain_registry.conftest import read_topic
from tests.domain_registry.mesh import mesh_files
from tests.domain_registry.run_events import produce, run_events, wait_for_run

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_kitchen_wizard_create_provision_merge_and_delete(registry):
    assert (
        await registry.client.post("/v1/apply", json={"files": mesh_files()})
    ).status_code == 200
    body = {
        "name": "dev-alice",
        "from": "dev",
        "ttl": "2d",
        "provision": "payments/settle",
        "params": {"batches": 1},
    }
    r = await registry.client.post("/v1/kitchens", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["parent"] == "dev"
    assert r.json()["spec"]["ttl"] == 172800.0
    again = await registry.client.post("/v1/kitchens", json=body)
    assert again.status_code == 422
    assert again.json()["errors"] == ["kitchens/dev-alice.yaml: kitchen: kitchen exists already"]
    orphan = await registry.client.post("/v1/kitchens", json={"name": "x", "from": "nowhere"})
    assert orphan.json()["errors"] == ["kitchens/x.yaml: parent: unknown kitchen 'nowhere'"]
    names = [k["name"] for k in (await registry.client.get("/v1/kitchens")).json()]
    assert names == ["dev", "dev-alice", "dev-sam", "prod"]
    assert (await registry.client.get("/v1/kitchens/dev-alice")).status_code == 200

    topic = ORDER_RUN_COMMANDS.full_name(registry.settings.kafka.topic_prefix)
    got = await read_topic(
        registry.settings.kafka,
        topic,
        until=lambda ms: any(isinstance(m, StartOrderRun) and m.kitchen == "dev-alice" for m in ms),
    )
    provision = next(m for m in got if isinstance(m, StartOrderRun))
    assert (provision.domain, provision.recipe) == ("payments", "settle")

    failed_run = uuid.uuid4()
    await produce(registry.settings.kafka, run_events(failed_run, "dev-alice", error_failed=1))
    run = await wait_for_run(registry.client, failed_run, "failed")
    assert [(s["step"], s["status"]) for s in run["steps"]] == [("model", "succeeded")]
    assert [(t["test"], t["status"]) for t in run["test_results"]] == [("enough_rows", "failed")]
    refused = await registry.client.post("/v1/kitchens/dev-alice/merge")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "kitchen 'dev-alice' cannot merge: the latest runs of sales/daily failed "
        "(error tests or run failures)"
    )
    fixed_run = uuid.uuid4()
    events = run_events(fixed_run, "dev-alice", error_failed=0)
    await produce(registry.settings.kafka, events + events[:2])  # duplicates are ignored
    run = await wait_for_run(registry.client, fixed_run, "succeeded")
    assert len(run["steps"]) == 1
    merged = await registry.client.post("/v1/kitchens/dev-alice/merge")
    assert merged.status_code == 200, merged.text
    assert merged.json() == {
        "kitchen": "dev-alice",
        "parent": "dev",
        "merged": True,
        "promoted": [],
    }
    assert (await registry.client.get("/v1/kitchens/dev-alice")).status_code == 404
    assert (await registry.client.post("/v1/kitchens/prod/merge")).status_code == 409

    assert (
        await registry.client.post("/v1/kitchens", json={"name": "tmp", "from": "dev"})
    ).status_code == 201
    assert (await registry.client.delete("/v1/kitchens/tmp")).status_code == 204
    assert (await registry.client.delete("/v1/kitchens/tmp")).status_code == 404
    runs = (await registry.client.get("/v1/runs?kitchen=dev-alice")).json()
    assert {r["order_run_id"] for r in runs} >= {str(failed_run), str(fixed_run)}
    datasets = (await registry.client.get("/v1/domains/sales/datasets")).json()
    assert datasets["outputs"]["daily"]["order_run_id"] == str(fixed_run)


async def test_a_new_kitchen_is_on_the_changelog_before_its_provisioning_run_is_asked(registry):
    # The scheduler catches up on the changelog when a command names a kitchen it does not
    # know; that finds the kitchen only if it was published before the command was made.
    assert (
        await registry.client.post("/v1/apply", json={"files": mesh_files()})
    ).status_code == 200
    body = {"name": "dev-dan", "from": "dev", "provision": "payments/settle"}
    assert (await registry.client.post("/v1/kitchens", json=body)).status_code == 201
    prefix = registry.settings.kafka.topic_prefix
    commands = await read_topic(
        registry.settings.kafka,
        ORDER_RUN_COMMANDS.full_name(prefix),
        until=lambda ms: any(isinstance(m, StartOrderRun) for m in ms),
    )
    provision = next(m for m in commands if isinstance(m, StartOrderRun))
    consumer = AIOKafkaConsumer(
        REGISTRY_CHANGELOG.full_name(prefix),
        **aiokafka_options(registry.settings.kafka),
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        async with asyncio.timeout(20):
            while (record := await consumer.getone()).key != b"kitchen:dev-dan":
                pass
    finally:
        await consumer.stop()
    published_ms = record.timestamp
    assert published_ms <= provision.occurred_at.timestamp() * 1000


async def test_kitchen_changes_need_admin(registry):
    reader = await registry.token("dev", {"*": ["read", "run"]})
    r = await registry.client.post(
        "/v1/kitchens", json={"name": "a", "from": "dev"}, headers=reader
    )
    assert r.status_code == 403
    assert (await registry.client.delete("/v1/kitchens/dev", headers=reader)).status_code == 403
    assert (await registry.client.post("/v1/kitchens/dev/merge", headers=reader)).status_code == 403


async def first_record(settings, topic: str):
    consumer = AIOKafkaConsumer(
        topic, **aiokafka_options(settings), group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        async with asyncio.timeout(20):
            return await consumer.getone()
    finally:
        await consumer.stop()


async def test_sandboxes_past_their_ttl_are_torn_down_and_deleted(registry):
    from sous_domain_registry.expiry import expire_kitchens

    assert (
        await registry.client.post("/v1/apply", json={"files": mesh_files()})
    ).status_code == 200
    body = {"name": "dev-bob", "from": "dev", "ttl": "0.3s", "teardown": "marketing/dashboard"}
    assert (await registry.client.post("/v1/kitchens", json=body)).status_code == 201
    keep = {"name": "dev-carol", "from": "dev", "ttl": "1d"}
    assert (await registry.client.post("/v1/kitchens", json=keep)).status_code == 201
    async with asyncio.timeout(10):
        while (expired := await expire_kitchens(registry.runtime)) == []:
            await asyncio.sleep(0.1)
    assert expired == ["dev-bob"]
    assert (await registry.client.get("/v1/kitchens/dev-bob")).status_code == 404
    assert (await registry.client.get("/v1/kitchens/dev-carol")).status_code == 200
    topic = ORDER_RUN_COMMANDS.full_name(registry.settings.kafka.topic_prefix)
    got = await read_topic(
        registry.settings.kafka,
        topic,
        until=lambda ms: any(isinstance(m, StartOrderRun) and m.kitchen == "dev-bob" for m in ms),
    )
    teardown = next(m for m in got if isinstance(m, StartOrderRun))
    assert (teardown.domain, teardown.recipe) == ("marketing", "dashboard")
    # The scheduler will act on it: signed by the registry, whose grant may run anything.
    record = await first_record(registry.settings.kafka, topic)
    accepted = await verify(teardown, record.value, record.headers, RegistryTrust(registry.runtime))
    assert accepted.principal == "sous-domain-registry"
    audit = (await registry.client.get("/v1/audit")).json()
    assert ("ttl", "kitchen.expire", "dev-bob") in {
        (e["principal"], e["action"], e["target"]) for e in audit
    }
