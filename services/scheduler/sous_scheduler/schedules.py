"""Cron schedules of variations: one run per (schedule, fire time) across replicas.

What is due is decided by `domain.schedules.due` (first sight, missed fires, the `missed`
policy); this module records it and starts the run, in one transaction per schedule.
"""

from __future__ import annotations

from sous_common.logs import get_logger
from sous_contracts.runs import RunCause, StartOrderRun
from sous_contracts.specs import RecipeSpec
from sous_scheduler.adapters.postgres import recipe_from
from sous_scheduler.domain.schedules import due
from sous_scheduler.domain.versions import Scheduled, scheduled
from sous_scheduler.service import Scheduler
from sous_scheduler.store import Tx
from sous_scheduler.triggers import Triggers

log = get_logger(__name__)


class Schedules:
    """Looks at every scheduled variation once per tick, in the version its kitchen runs."""

    def __init__(self, scheduler: Scheduler, triggers: Triggers | None = None) -> None:
        self.scheduler = scheduler
        self.store = scheduler.store
        self.triggers = triggers

    async def tick(self) -> None:
        """Start due cron runs and the monitors' cron checks."""
        async with self.scheduler.transaction() as conn:
            rows = await self.store.recipe_versions(conn)
            kitchens = await self.store.kitchens(conn)
        versions: dict[tuple[str, str], dict[str | None, RecipeSpec]] = {}
        for row in rows:
            recipe = recipe_from(row["spec"])
            versions.setdefault((row["domain"], row["name"]), {})[row["kitchen"]] = recipe
        for (domain, name), found in versions.items():
            for entry in scheduled(domain, name, found, kitchens):
                async with self.scheduler.transaction() as conn:
                    await self._due(conn, domain, name, entry)
        if self.triggers is not None:
            await self.triggers.monitors.tick()

    async def _due(self, conn: Tx, domain: str, recipe: str, entry: Scheduled) -> None:
        schedule_id = entry.schedule_id
        last = await self.store.last_fire(conn, schedule_id)
        what = due(entry.schedule, last, self.scheduler.clock())
        recorded = await self.store.record_fires(conn, schedule_id, what.skipped)
        if recorded and what.fire is None and last is not None:
            log.info(
                "missed schedule fire skipped",
                schedule=schedule_id,
                fire_time=what.skipped[-1].isoformat(),
            )
        if what.fire is None:
            return
        run_id = self.scheduler.context().new_id()
        if not await self.store.claim_fire(conn, schedule_id, what.fire, run_id):
            return
        log.info(
            "schedule fired",
            schedule=schedule_id,
            fire_time=what.fire.isoformat(),
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
                idempotency_key=f"cron:{schedule_id}@{what.fire.isoformat()}",
            ),
            RunCause(kind="schedule", schedule_id=schedule_id, fire_time=what.fire),
        )
