"""Cron schedules of variations: one run per (schedule, fire time) across replicas.

The first time a schedule is seen, its last fire time before now is recorded without a run,
so a new schedule does not replay history. Fires missed while every replica was down are
skipped or run once, as the schedule's `missed` policy says.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from sous_common.db import AnyConnection
from sous_common.logs import get_logger
from sous_contracts.envelope import new_message_id
from sous_contracts.runs import StartOrderRun
from sous_contracts.specs import RecipeSpec, ScheduleSpec
from sous_scheduler.adapters import postgres as db
from sous_scheduler.domain.versions import Scheduled, scheduled
from sous_scheduler.service import Scheduler
from sous_scheduler.triggers import Triggers

log = get_logger(__name__)

ON_TIME = timedelta(seconds=60)
"""A fire this late still counts as on time rather than missed."""


def fire_times(spec: ScheduleSpec, after: datetime, until: datetime) -> list[datetime]:
    """Fire times in (after, until], in the schedule's time zone.

    A wall-clock time that happens twice (clocks going back) fires once, at its first instant.
    """
    zone = ZoneInfo(spec.timezone)
    start = after.astimezone(zone)
    it = croniter(spec.cron, start)
    out: list[datetime] = []
    wall = start.replace(tzinfo=None)
    while (t := it.get_next(datetime)) <= until:
        if t.replace(tzinfo=None) == wall:
            continue
        wall = t.replace(tzinfo=None)
        out.append(t)
        if len(out) > 10_000:  # a tight cron over a long outage: enough to decide
            break
    return out


def previous_fire(spec: ScheduleSpec, now: datetime) -> datetime:
    """The last fire time at or before now."""
    zone = ZoneInfo(spec.timezone)
    result: datetime = croniter(spec.cron, now.astimezone(zone)).get_prev(datetime)
    return result


class Schedules:
    """Looks at every scheduled variation once per tick, in the version its kitchen runs."""

    def __init__(self, scheduler: Scheduler, triggers: Triggers | None = None) -> None:
        self.scheduler = scheduler
        self.triggers = triggers

    async def tick(self) -> None:
        """Start the runs whose fire time came, and coalesced triggers whose window closed."""
        async with self.scheduler.rt.pool.acquire() as conn:
            rows = await db.recipe_versions(conn)
            kitchens = await db.kitchens(conn)
        versions: dict[tuple[str, str], dict[str | None, RecipeSpec]] = {}
        for row in rows:
            recipe = db.recipe_from(row["spec"])
            versions.setdefault((row["domain"], row["name"]), {})[row["kitchen"]] = recipe
        for (domain, name), found in versions.items():
            for entry in scheduled(domain, name, found, kitchens):
                async with self.scheduler.rt.pool.acquire() as conn, conn.transaction():
                    await self._due(conn, domain, name, entry)
        if self.triggers is not None:
            await self.triggers.fire_coalesced()

    async def _due(self, conn: AnyConnection, domain: str, recipe: str, entry: Scheduled) -> None:
        schedule_id, spec = entry.schedule_id, entry.schedule
        now = self.scheduler.clock()
        last = await conn.fetchval(
            "SELECT max(fire_time) FROM cron_fires WHERE schedule_id = $1", schedule_id
        )
        if last is None:
            await conn.execute(
                "INSERT INTO cron_fires (schedule_id, fire_time) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING",
                schedule_id,
                previous_fire(spec, now),
            )
            return
        due = fire_times(spec, last, now)
        if not due:
            return
        latest = due[-1]
        run = spec.missed == "run_once" or now - latest <= ON_TIME
        for t in due[:-1]:  # missed while down: recorded, never run one by one
            await conn.execute(
                "INSERT INTO cron_fires (schedule_id, fire_time) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING",
                schedule_id,
                t,
            )
        run_id = new_message_id() if run else None
        first = await conn.fetchval(
            "INSERT INTO cron_fires (schedule_id, fire_time, order_run_id) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING true",
            schedule_id,
            latest,
            run_id,
        )
        if not first or run_id is None:
            if first:
                log.info(
                    "missed schedule fire skipped",
                    schedule=schedule_id,
                    fire_time=latest.isoformat(),
                )
            return
        log.info(
            "schedule fired",
            schedule=schedule_id,
            fire_time=latest.isoformat(),
            order_run_id=str(run_id),
        )
        await self.scheduler.start_in(
            conn,
            StartOrderRun(
                producer="scheduler",
                order_run_id=run_id,
                domain=domain,
                recipe=recipe,
                variation=entry.variation,
                kitchen=entry.kitchen,
                idempotency_key=f"cron:{schedule_id}@{latest.isoformat()}",
            ),
        )
