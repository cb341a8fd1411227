"""Keyed joins and run-once keys on real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from sous import run_view
from sous_contracts.common import RunStatus
from sous_contracts.runs import (
    DomainRunCompleted,
    JoinWindowExpired,
    OrderRunDeduplicated,
    OrderRunFinished,
    StartOrderRun,
)
from sous_contracts.topics import RUN_EVENTS
from tests.scheduler.integration.conftest import handled, publish_registry, recipe, run_scheduler
from tests.scheduler.integration.test_runs import read_topics
from tests.scheduler.standins import send, standins

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

NOOP = {"run": {"kind": "noop"}}
SALES = {"domain": "sales", "recipe": "daily"}
PAYMENTS = {"domain": "payments", "recipe": "settle"}


@pytest.fixture
async def scheduler(kafka_settings, servers, schema):
    # The cron loop as good as off: trigger windows end on the timers' cadence, not the cron's.
    async with run_scheduler(kafka_settings, servers, schema, cron_poll_s=3600) as service:
        yield service


def revenue(within: str = "10m") -> object:
    return recipe(
        "finance",
        "revenue",
        {"load": NOOP},
        params={"day": {"required": True}},
        triggers=[
            {
                "name": "by-day",
                "all": [SALES, PAYMENTS],
                "key": "${event.params.day}",
                "within": within,
                "params": {"day": "${key}"},
                "variation": "prod",
            }
        ],
    )


def done(upstream: dict, day: str) -> DomainRunCompleted:
    return DomainRunCompleted(
        **upstream,
        variation="prod",
        kitchen="prod",
        status=RunStatus.SUCCEEDED,
        order_run_id=uuid.uuid4(),
        params={"day": day},
    )


async def finance_runs(service) -> list:
    return list(
        await service.rt.pool.fetch(
            "SELECT id, state->'params' AS params, state->'trigger_event'->>'key' AS key"
            " FROM runs WHERE domain = 'finance' ORDER BY created_at"
        )
    )


async def test_only_events_of_one_day_join(kafka_settings, scheduler) -> None:
    await publish_registry(kafka_settings, scheduler, [revenue()])
    # handled() is the barrier: both events are in the scheduler's inbox, and their join
    # state committed with them, before we look.
    await handled(scheduler, [done(SALES, "2026-11-01"), done(PAYMENTS, "2026-11-02")])
    assert await finance_runs(scheduler) == []
    windows = await scheduler.rt.pool.fetch("SELECT key FROM join_windows ORDER BY key")
    assert [w["key"] for w in windows] == ["2026-11-01", "2026-11-02"]

    await handled(scheduler, [done(PAYMENTS, "2026-11-01")])
    [run] = await finance_runs(scheduler)
    assert run["params"] == '{"day": "2026-11-01"}'
    assert run["key"] == "2026-11-01"
    windows = await scheduler.rt.pool.fetch("SELECT key FROM join_windows")
    assert [w["key"] for w in windows] == ["2026-11-02"], "day A's join is used up"


async def test_a_half_joined_window_expires_and_says_what_arrived(
    kafka_settings, scheduler
) -> None:
    await publish_registry(kafka_settings, scheduler, [revenue(within="1s")])
    sales = done(SALES, "2026-11-03")
    await handled(scheduler, [sales])

    def expired(seen: list) -> bool:
        return any(isinstance(e, JoinWindowExpired) for e in seen)

    events = await read_topics(kafka_settings, [RUN_EVENTS], expired, timeout=30)
    [event] = [e for e in events if isinstance(e, JoinWindowExpired)]
    assert (event.trigger_id, event.key, event.kitchen) == (
        "finance/revenue#by-day",
        "2026-11-03",
        "prod",
    )
    assert [(u.domain, u.arrived, u.order_run_id) for u in event.upstreams] == [
        ("sales", True, sales.order_run_id),
        ("payments", False, None),
    ]
    assert await scheduler.rt.pool.fetchval("SELECT count(*) FROM join_windows") == 0
    assert await finance_runs(scheduler) == []


def start(recipe_name: str, key: str, kitchen: str | None = None) -> StartOrderRun:
    return StartOrderRun(
        order_run_id=uuid.uuid4(),
        domain="sales",
        recipe=recipe_name,
        variation="prod",
        kitchen=kitchen,
        idempotency_key=key,
    )


def answered(seen: list) -> bool:
    return any(isinstance(e, OrderRunDeduplicated) for e in seen)


async def test_a_repeated_key_is_answered_with_the_first_run(kafka_settings, scheduler) -> None:
    await publish_registry(
        kafka_settings,
        scheduler,
        [recipe("sales", "daily", {"load": NOOP}), recipe("sales", "weekly", {"load": NOOP})],
    )
    first, again = start("daily", "day-1"), start("daily", "day-1")
    other_recipe, other_kitchen = start("weekly", "day-1"), start("daily", "day-1", "dev")
    await handled(scheduler, [first])
    await handled(scheduler, [again, other_recipe, other_kitchen])

    events = await read_topics(kafka_settings, [RUN_EVENTS], answered)
    [dup] = [e for e in events if isinstance(e, OrderRunDeduplicated)]
    assert dup.order_run_id == again.order_run_id
    assert dup.existing_order_run_id == first.order_run_id
    assert (dup.idempotency_key, dup.command_message_id) == ("day-1", again.message_id)
    assert dup.status is None, "the first run is still running"
    started = await scheduler.rt.pool.fetch("SELECT id FROM runs")
    assert {r["id"] for r in started} == {
        first.order_run_id,
        other_recipe.order_run_id,
        other_kitchen.order_run_id,
    }


async def test_run_wait_follows_the_run_a_repeated_key_started(
    kafka_settings, scheduler, monkeypatch
) -> None:
    await publish_registry(kafka_settings, scheduler, [recipe("sales", "daily", {"load": NOOP})])
    monkeypatch.setenv("SOUS_KAFKA_BOOTSTRAP", kafka_settings.bootstrap)
    monkeypatch.setenv("SOUS_KAFKA_TOPIC_PREFIX", kafka_settings.topic_prefix)

    async def send_as_a_client(settings, message) -> None:
        await send(settings, [message])  # signed as a principal this scheduler trusts

    monkeypatch.setattr(run_view, "send", send_as_a_client)
    first = start("daily", "day-2")
    async with standins(kafka_settings):
        await send(kafka_settings, [first])
        await read_topics(
            kafka_settings,
            [RUN_EVENTS],
            lambda seen: any(
                isinstance(e, OrderRunFinished) and e.order_run_id == first.order_run_id
                for e in seen
            ),
        )
        # The first run ended before the repeat: the answer carries its outcome.
        async with asyncio.timeout(30):
            assert await run_view._watch(start("daily", "day-2"), as_json=True) == 0


async def test_run_wait_follows_a_first_run_still_going(
    kafka_settings, scheduler, monkeypatch
) -> None:
    await publish_registry(kafka_settings, scheduler, [recipe("sales", "daily", {"load": NOOP})])
    monkeypatch.setenv("SOUS_KAFKA_BOOTSTRAP", kafka_settings.bootstrap)
    monkeypatch.setenv("SOUS_KAFKA_TOPIC_PREFIX", kafka_settings.topic_prefix)

    async def send_as_a_client(settings, message) -> None:
        await send(settings, [message])

    monkeypatch.setattr(run_view, "send", send_as_a_client)
    first = start("daily", "day-3")
    await handled(scheduler, [first])  # no executor yet: it keeps running
    waiting = asyncio.ensure_future(run_view._watch(start("daily", "day-3"), as_json=True))
    await read_topics(
        kafka_settings,
        [RUN_EVENTS],
        lambda seen: any(isinstance(e, OrderRunDeduplicated) for e in seen),
    )
    assert not waiting.done()
    async with standins(kafka_settings):  # now the first run can end
        async with asyncio.timeout(30):
            assert await waiting == 0
