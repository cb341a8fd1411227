"""The scheduler's subscribers in memory: FastStream's TestKafkaBroker over the fake store.

The handlers, their decoding and the consumer guard run as in production; only the broker
and the tables are in memory.
"""

from __future__ import annotations

from faststream.kafka import TestKafkaBroker

from sous_common.runtime import Runtime
from sous_common.settings import KafkaSettings
from sous_contracts.common import RunStatus
from sous_contracts.envelope import Envelope
from sous_contracts.runs import OrderRunFinished
from sous_contracts.steps import ExecuteStep
from sous_contracts.topics import topic_for
from sous_scheduler.handlers import register
from tests.scheduler.integration.conftest import KITCHENS, recipe
from tests.scheduler.world import NOOP, World, answers, start

CHAIN = recipe("a", "chain", {"one": NOOP, "two": {**NOOP, "needs": ["one"]}})


async def test_a_run_goes_through_the_handlers_and_redeliveries_change_nothing() -> None:
    world = World()
    rt = Runtime(service="scheduler", kafka=KafkaSettings(topic_prefix="mem."))
    register(rt, world.scheduler, world.triggers, world.backfills)

    async with TestKafkaBroker(rt.broker) as broker:

        async def deliver(*messages: Envelope) -> None:
            for m in messages:
                for _ in range(2):  # at least once: every message twice
                    await broker.publish(m.to_json(), rt.topic(topic_for(m)), key=m.kafka_key())

        cmd = start("a", "chain")
        await deliver(*KITCHENS, CHAIN, cmd)
        for _ in range(2):
            await deliver(*answers(world.sent(ExecuteStep, cmd.order_run_id)[-1]))

    # The in-memory consumers take no offsets: drop them, as a stopping runtime does.
    await rt.guard.stop(flush=False)
    assert [e.step for e in world.sent(ExecuteStep)] == ["one", "two"]
    [done] = world.sent(OrderRunFinished)
    assert done.status is RunStatus.SUCCEEDED
