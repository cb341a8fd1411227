"""Cross-domain triggers: completion events start downstream runs (DESIGN §5.6).

A firing is recorded as (trigger, upstream message id) in the same transaction that starts
the run, so a redelivered event or a second replica cannot start it twice. Join state of
`all` / `at_least` triggers lives in `trigger_joins`, where operators can see it.
"""

from __future__ import annotations

import json
from datetime import timedelta

from sous_common import inbox
from sous_common.db import AnyConnection
from sous_common.logs import get_logger
from sous_contracts.envelope import new_message_id
from sous_contracts.runs import DomainRunCompleted
from sous_scheduler.adapters import postgres as db
from sous_scheduler.domain.params import ParamError
from sous_scheduler.domain.triggers import (
    Listener,
    TriggerIndex,
    depth_limit,
    listeners,
    matching_patterns,
    start_command,
)
from sous_scheduler.service import Scheduler

log = get_logger(__name__)


class Triggers:
    """Matches completion events against the triggers of the versions their kitchen runs."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self._generation: object = None
        self._index_now = TriggerIndex({}, {})

    async def _index(self, conn: AnyConnection) -> TriggerIndex:
        # Cheap generation check; the registry view is shared by every replica.
        row = await conn.fetchrow(
            "SELECT count(*), max(updated_at) FROM registry WHERE kind IN ('recipe', 'kitchen')"
        )
        generation = (row[0], row[1]) if row is not None else None
        if generation != self._generation:
            versions: dict[tuple[str, str], dict[str | None, list[Listener]]] = {}
            for row in await db.recipe_versions(conn):
                found = listeners(row["domain"], row["name"], db.recipe_from(row["spec"]))
                versions.setdefault((row["domain"], row["name"]), {})[row["kitchen"]] = found
            self._index_now = TriggerIndex(versions, await db.kitchens(conn))
            self._generation = generation
        return self._index_now

    async def on_completed(self, event: DomainRunCompleted) -> None:
        """Start every downstream run this event triggers, with the versions its kitchen runs."""
        async with self.scheduler.rt.pool.acquire() as conn, conn.transaction():
            if not await inbox.claim(conn, self.scheduler.rt.group_id, event.message_id):
                return
            for listener in (await self._index(conn)).listening(event.domain, event.kitchen):
                if patterns := matching_patterns(listener, event):
                    await self._consider(conn, listener, patterns, event)

    async def _consider(
        self,
        conn: AnyConnection,
        listener: Listener,
        patterns: list[int],
        event: DomainRunCompleted,
    ) -> None:
        trigger = listener.trigger
        if trigger.all is not None or trigger.at_least is not None:
            if not await self._joined(conn, listener, patterns, event):
                return
        elif trigger.mode == "coalesce":
            await conn.execute(
                "INSERT INTO trigger_joins (trigger_id, kitchen, pattern, message_id, arrived_at,"
                " event) VALUES ($1, $2, -1, $3, $4, $5::jsonb) ON CONFLICT (trigger_id,"
                " kitchen, pattern) DO UPDATE SET message_id = $3, arrived_at = $4,"
                " event = $5::jsonb",
                listener.trigger_id,
                event.kitchen,
                event.message_id,
                self.scheduler.clock(),
                event.model_dump_json(),
            )
            return
        await self.fire(conn, listener, event)

    async def _joined(
        self,
        conn: AnyConnection,
        listener: Listener,
        patterns: list[int],
        event: DomainRunCompleted,
    ) -> bool:
        trigger = listener.trigger
        now = self.scheduler.clock()
        window = timedelta(seconds=trigger.within or 0)
        for i in patterns:
            await conn.execute(
                "INSERT INTO trigger_joins (trigger_id, kitchen, pattern, message_id, arrived_at,"
                " event) VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (trigger_id, kitchen,"
                " pattern) DO UPDATE SET message_id = $4, arrived_at = $5, event = $6::jsonb",
                listener.trigger_id,
                event.kitchen,
                i,
                event.message_id,
                now,
                event.model_dump_json(),
            )
        await conn.execute(
            "DELETE FROM trigger_joins WHERE trigger_id = $1 AND kitchen = $2 AND pattern >= 0"
            " AND arrived_at < $3",
            listener.trigger_id,
            event.kitchen,
            now - window,
        )
        present = await conn.fetchval(
            "SELECT count(*) FROM trigger_joins WHERE trigger_id = $1 AND kitchen = $2"
            " AND pattern >= 0",
            listener.trigger_id,
            event.kitchen,
        )
        needed = trigger.at_least.n if trigger.at_least else len(trigger.all or [])
        if present < needed:
            return False
        await conn.execute(
            "DELETE FROM trigger_joins WHERE trigger_id = $1 AND kitchen = $2 AND pattern >= 0",
            listener.trigger_id,
            event.kitchen,
        )
        return True

    async def fire(
        self, conn: AnyConnection, listener: Listener, event: DomainRunCompleted
    ) -> None:
        """Start the downstream run once per (trigger, upstream event)."""
        limit = depth_limit(listener, self.scheduler.settings.max_causation_depth)
        outcome, run_id = "started", new_message_id()
        if event.causation_depth + 1 > limit:
            outcome = f"refused: causation depth {event.causation_depth + 1} > limit {limit}"
        first = await conn.fetchval(
            "INSERT INTO trigger_firings (trigger_id, upstream_message_id, order_run_id, outcome)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
            listener.trigger_id,
            event.message_id,
            run_id if outcome == "started" else None,
            outcome,
        )
        if not first or outcome != "started":
            if outcome != "started":
                log.warning("trigger not fired", trigger=listener.trigger_id, reason=outcome)
            return
        try:
            command = start_command(listener, event, run_id)
        except ParamError as exc:
            log.warning(
                "trigger params do not resolve", trigger=listener.trigger_id, error=str(exc)
            )
            await conn.execute(
                "UPDATE trigger_firings SET outcome = $3, order_run_id = NULL"
                " WHERE trigger_id = $1 AND upstream_message_id = $2",
                listener.trigger_id,
                event.message_id,
                f"refused: {exc}",
            )
            return
        log.info(
            "trigger fired",
            trigger=listener.trigger_id,
            order_run_id=str(run_id),
            upstream=str(event.order_run_id),
        )
        await self.scheduler.start_in(conn, command)

    async def fire_coalesced(self) -> int:
        """Fire coalescing triggers whose debounce window has passed since the last event."""
        fired = 0
        index_conn = self.scheduler.rt.pool
        async with index_conn.acquire() as conn, conn.transaction():
            index = await self._index(conn)
            rows = await conn.fetch(
                "SELECT trigger_id, kitchen, arrived_at, event FROM trigger_joins"
                " WHERE pattern = -1 FOR UPDATE SKIP LOCKED"
            )
            now = self.scheduler.clock()
            for row in rows:
                listener = index.listener(row["trigger_id"], row["kitchen"])
                if listener is None:
                    continue
                if row["arrived_at"] + timedelta(seconds=listener.trigger.debounce) > now:
                    continue
                await conn.execute(
                    "DELETE FROM trigger_joins WHERE trigger_id = $1 AND kitchen = $2"
                    " AND pattern = -1",
                    row["trigger_id"],
                    row["kitchen"],
                )
                event = DomainRunCompleted.model_validate(json.loads(row["event"]))
                await self.fire(conn, listener, event)
                fired += 1
        return fired
