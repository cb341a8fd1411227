"""A consumer group as the broker sees it: which members own which partitions of a topic."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from sous_common.kafka import aiokafka_options
from sous_common.settings import KafkaSettings


async def owners(settings: KafkaSettings, group: str, topic: str) -> list[set[int]]:
    """The partitions of `topic` each member of a stable `group` owns; members owning none
    are left out, and a group that is rebalancing has no owners yet."""
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    found: list[set[int]] = []
    for response in responses:
        for _error, _group, state, _ptype, _protocol, members, *_ in response.groups:
            if state != "Stable":
                return []
            for _member, _client, _host, _metadata, assignment in members:
                decoded = ConsumerProtocolMemberAssignment.decode(assignment)
                mine = {p for t, ps in decoded.assignment if t == topic for p in ps}
                if mine:
                    found.append(mine)
    return found


async def owned_by(
    settings: KafkaSettings, group: str, topic: str, members: int, timeout: float = 60
) -> list[set[int]]:
    """Wait until `members` members of the group each own partitions of the topic."""
    async with asyncio.timeout(timeout):
        while len(found := await owners(settings, group, topic)) < members:
            await asyncio.sleep(0.2)
    return found
