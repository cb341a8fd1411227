"""The catalog's topic settings (retention, cleanup) reach the broker, also on existing topics."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from sous_common.kafka import aiokafka_options
from sous_common.topic_admin import update_topic_configs
from sous_contracts.topics import CATALOG, DOMAIN_EVENTS, REGISTRY_CHANGELOG, STEP_EVENTS

pytestmark = pytest.mark.kafka


async def configs(settings, topic) -> dict[str, str]:
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        name = topic.full_name(settings.topic_prefix)
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        [(_, _, _, _, entries)] = response.resources
        return {e[0]: e[1] for e in entries}
    finally:
        await admin.close()


async def settled(settings, topic, expected: dict[str, str]) -> dict[str, str]:
    """Wait until the broker reports `expected` (a change reaches it through its metadata log)."""
    async with asyncio.timeout(20):
        while {k: (found := await configs(settings, topic)).get(k) for k in expected} != expected:
            await asyncio.sleep(0.05)
    return found


async def alter(settings, topic, values: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        name = topic.full_name(settings.topic_prefix)
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs=values)])
    finally:
        await admin.close()


async def test_created_topics_carry_the_catalog_retention(kafka_settings) -> None:
    for topic in CATALOG:
        # A topic created a moment ago reaches the broker that answers through its metadata
        # log; until then it is described without its settings.
        found = await settled(kafka_settings, topic, topic.config())
        assert {k: found[k] for k in topic.config()} == topic.config(), topic.name
    assert (await configs(kafka_settings, DOMAIN_EVENTS))["retention.ms"] == str(28 * 86_400_000)
    assert (await configs(kafka_settings, REGISTRY_CHANGELOG))["cleanup.policy"] == "compact"


async def test_existing_topics_are_brought_to_the_catalog_settings(kafka_settings) -> None:
    # A topic whose retention someone set otherwise, plus an operator's own setting that
    # the catalog does not name.
    await alter(
        kafka_settings,
        STEP_EVENTS,
        {"cleanup.policy": "delete", "retention.ms": "60000", "max.message.bytes": "2000000"},
    )
    await settled(kafka_settings, STEP_EVENTS, {"retention.ms": "60000"})

    changed = await update_topic_configs(kafka_settings)

    name = STEP_EVENTS.full_name(kafka_settings.topic_prefix)
    assert changed == {name: {"retention.ms": STEP_EVENTS.config()["retention.ms"]}}
    found = await settled(kafka_settings, STEP_EVENTS, STEP_EVENTS.config())
    assert found["max.message.bytes"] == "2000000"  # kept
    assert await update_topic_configs(kafka_settings) == {}  # idempotent
