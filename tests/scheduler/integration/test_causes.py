"""Why a run started, on OrderRunStarted: a command and its principal, a trigger's join and
its upstream runs, a parent's nested step, a schedule and its fire time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sous_contracts.runs import OrderRunStarted, RunCause
from sous_scheduler.schedules import Schedules
from tests.scheduler.integration.conftest import handled, publish_registry, recipe
from tests.scheduler.integration.test_runs import run_events, start
from tests.scheduler.integration.test_schedules import clock_and_scheduler, scheduled
from tests.scheduler.integration.test_triggers import done
from tests.scheduler.standins import send, standins

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
__all__ = ["clock_and_scheduler"]  # the fixture, shared with the schedule tests

NOOP = {"run": {"kind": "noop"}}


def started(events: list) -> dict[tuple[str, str], OrderRunStarted]:
    return {(e.domain, e.recipe): e for e in events if isinstance(e, OrderRunStarted)}


async def test_commands_nested_runs_and_joins_say_why_they_started(
    kafka_settings, scheduler
) -> None:
    join = {"all": [{"domain": "a"}, {"domain": "b"}], "within": "10m", "variation": "prod"}
    await publish_registry(
        kafka_settings,
        scheduler,
        [
            recipe("fin", "fx", {"rates": NOOP}),
            recipe("p", "make", {"child": {"recipe": "fin/fx"}}),
            recipe("j", "follow", {"x": NOOP}, triggers=[{"name": "both", **join}]),
        ],
    )
    command = start("p", "make")
    upstream = [done("a"), done("b")]
    async with standins(kafka_settings):
        await send(kafka_settings, [command])
        await handled(scheduler, upstream)
        events = await run_events(
            kafka_settings,
            lambda s: {("p", "make"), ("fin", "fx"), ("j", "follow")} <= set(started(s)),
        )
    runs = started(events)
    # The principal the scheduler verified: the stand-ins sign as the scheduler itself.
    assert runs["p", "make"].cause == RunCause(kind="command", principal="sous-scheduler")
    child = runs["fin", "fx"].cause
    assert child is not None
    assert (child.kind, child.parent_order_run_id, child.parent_step) == (
        "nested",
        command.order_run_id,
        "child",
    )
    joined = runs["j", "follow"].cause
    assert joined is not None
    assert (joined.kind, joined.trigger) == ("trigger", "j/follow#both")
    assert set(joined.upstream_order_run_ids) == {e.order_run_id for e in upstream}
    assert set(joined.upstream_message_ids) == {e.message_id for e in upstream}


async def test_a_scheduled_run_names_its_schedule_and_fire_time(
    kafka_settings, clock_and_scheduler
) -> None:
    clock, service = clock_and_scheduler
    await publish_registry(kafka_settings, service, [scheduled("minutely", "* * * * *")])
    await Schedules(service).tick()  # the first sight sets the baseline
    clock.now += timedelta(seconds=40)
    await Schedules(service).tick()
    found = await service.rt.pool.fetchval(
        "SELECT state->'cause' FROM runs WHERE recipe = 'minutely'"
    )
    cause = RunCause.model_validate_json(found)
    assert cause == RunCause(
        kind="schedule",
        schedule_id="s/minutely/prod",
        fire_time=datetime(2026, 1, 1, 10, 1, tzinfo=UTC),
    )
