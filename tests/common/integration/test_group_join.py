"""A service's consumers join their shared group together, not one rebalance each.

Started one by one, every consumer that joins rebalances the group again: the sixth joins in
generation 6 or later. Together they join in one or two (three or four on a busy machine, when
the broker asks each new member to come again with its id), always fewer than one each.
"""

from __future__ import annotations

from typing import Any

import pytest

from sous_common.kafka import make_broker
from sous_common.subscribing import consumer_options
from sous_contracts.topics import CATALOG

pytestmark = pytest.mark.kafka

SUBSCRIBERS = 6


async def test_the_consumers_of_one_group_join_in_few_rebalances(kafka_settings) -> None:
    broker = make_broker(kafka_settings, client_id="test")
    topics = [t.full_name(kafka_settings.topic_prefix) for t in CATALOG][:SUBSCRIBERS]
    assert len(topics) == SUBSCRIBERS

    for topic in topics:

        @broker.subscriber(topic, **consumer_options("sous-join-test"))
        async def handle(message: Any) -> None:
            pass

    async with broker:
        await broker.start()
        consumers = [s.consumer for s in broker.subscribers]
        generations = [c._coordinator.generation for c in consumers]

    assert all(c is not None for c in consumers)
    assert max(generations) < SUBSCRIBERS, generations
