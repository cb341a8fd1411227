"""Composition root: `faststream run --factory sous_scheduler.app:create_app`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from functools import partial

from faststream import FastStream

from sous_common.logs import configure, get_logger
from sous_common.loops import every
from sous_common.migrate import load
from sous_common.runtime import Runtime
from sous_common.settings import DatabaseSettings, KafkaSettings
from sous_common.trust import MARK_TYPES, SIGNED_TYPES, load_signer
from sous_scheduler import metrics
from sous_scheduler.adapters import retention
from sous_scheduler.adapters.changelog import catch_up
from sous_scheduler.adapters.lineage import HttpLineage
from sous_scheduler.adapters.trust import SchedulerTrust
from sous_scheduler.backfills import Backfills
from sous_scheduler.handlers import register
from sous_scheduler.schedules import Schedules
from sous_scheduler.service import Scheduler
from sous_scheduler.settings import SchedulerSettings
from sous_scheduler.triggers import Triggers

log = get_logger(__name__)

PRINCIPAL = "sous-scheduler"
"""The principal the scheduler signs as; it holds `admin` on every domain."""


def build(
    settings: SchedulerSettings | None = None,
    kafka: KafkaSettings | None = None,
    database: DatabaseSettings | None = None,
    clock: Callable[[], datetime] | None = None,
) -> tuple[Runtime, Scheduler]:
    """Build the scheduler's runtime with its subscribers and background loops.

    Args:
        settings: Scheduler settings; read from the environment when None.
        kafka: Kafka settings; read from the environment when None.
        database: Database settings; read from the environment when None.
        clock: What "now" is (tests move time); the wall clock when None.
    """
    settings = settings or SchedulerSettings()
    signer = load_signer(PRINCIPAL, settings.signing_key_file, "SOUS_SCHEDULER_SIGNING_KEY_FILE")
    rt = Runtime(
        "scheduler",
        kafka or KafkaSettings(),
        database or DatabaseSettings(),
        schema=settings.schema_name,
        migrations=load("scheduler", "sous_scheduler.migrations"),
        retention=retention.RULES,
        signer=signer,
    )
    scheduler = Scheduler(rt, settings, clock) if clock else Scheduler(rt, settings)
    if settings.openlineage.transport == "http":
        rt.publish_via[scheduler.lineage.topic] = HttpLineage()
    scheduler.refresh_registry = partial(catch_up, rt)
    rt.guard.trust = SchedulerTrust(rt, signer, scheduler.refresh, scheduler.clock)
    rt.guard.verified = SIGNED_TYPES | MARK_TYPES  # marks: the scheduler's own
    triggers = Triggers(scheduler)
    schedules = Schedules(scheduler, triggers)
    register(rt, scheduler, triggers, Backfills(scheduler))
    loops: list[asyncio.Task[None]] = []

    @rt.on_opened
    async def read_registry() -> None:
        await catch_up(rt)

    @rt.on_scrape
    async def read_timers() -> None:
        async with scheduler.transaction() as conn:
            metrics.timers_due(await scheduler.store.timers_due(conn, scheduler.clock()))

    @rt.on_started
    async def start_loops() -> None:
        loops.append(
            asyncio.create_task(
                every(settings.timer_poll_s, scheduler.fire_due_timers, "timers"), name="timers"
            )
        )
        loops.append(
            asyncio.create_task(
                every(settings.cron_poll_s, schedules.tick, "schedules"), name="schedules"
            )
        )
        loops.append(
            asyncio.create_task(
                every(settings.timer_poll_s, triggers.fire_due, "trigger windows"),
                name="trigger windows",
            )
        )
        loops.append(
            asyncio.create_task(
                every(settings.mark_interval_s, scheduler.mark_step_events, "marks"), name="marks"
            )
        )

    @rt.on_stopping
    async def stop_loops() -> None:
        for task in loops:
            task.cancel()
        for task in loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        loops.clear()

    return rt, scheduler


def create_app() -> FastStream:
    """Return the scheduler application."""
    configure("scheduler")
    rt, _ = build()
    return rt.app()
