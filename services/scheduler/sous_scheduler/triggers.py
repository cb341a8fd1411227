"""Cross-domain triggers: completion events start downstream runs (DESIGN §5.6).

A firing is recorded as (trigger, upstream message id) in the same transaction that starts
the run, so a redelivered event or a second replica cannot start it twice. Join state of
`all` / `at_least` triggers lives in `trigger_joins`, where operators can see it.
"""

from __future__ import annotations

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
    debounce_over,
    depth_limit,
    join_cutoff,
    join_needed,
    listeners,
    matching_patterns,
    start_command,
    trigger_cause,
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
        generation = await db.registry_generation(conn)
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
        async with self.scheduler.transaction() as conn:
            if not await inbox.claim(conn, self.scheduler.rt.group_id, event.message_id):
                return
            if not event.fire_triggers:  # a backfill's run, without `downstream`
                log.info("triggers suppressed", order_run_id=str(event.order_run_id))
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
        trigger, now = listener.trigger, self.scheduler.clock()
        if trigger.all is not None or trigger.at_least is not None:
            present = await db.join_arrived(
                conn,
                listener.trigger_id,
                event.kitchen,
                patterns,
                event,
                now,
                join_cutoff(trigger, now),
            )
            if present < join_needed(trigger):
                return
            joined = await db.clear_join(conn, listener.trigger_id, event.kitchen)
            await self.fire(conn, listener, event, joined)
            return
        if trigger.mode == "coalesce":
            await db.hold_for_debounce(conn, listener.trigger_id, event.kitchen, event, now)
            return
        await self.fire(conn, listener, event)

    async def fire(
        self,
        conn: AnyConnection,
        listener: Listener,
        event: DomainRunCompleted,
        joined: list[DomainRunCompleted] | None = None,
    ) -> None:
        """Start the downstream run once per (trigger, upstream event).

        `joined` are every arrival of a join that fired (the event among them): the run's
        upstream in its cause.
        """
        limit = depth_limit(listener, self.scheduler.settings.max_causation_depth)
        outcome, run_id = "started", new_message_id()
        if event.causation_depth + 1 > limit:
            outcome = f"refused: causation depth {event.causation_depth + 1} > limit {limit}"
        first = await db.record_firing(
            conn,
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
            await db.refuse_firing(conn, listener.trigger_id, event.message_id, str(exc))
            return
        log.info(
            "trigger fired",
            trigger=listener.trigger_id,
            order_run_id=str(run_id),
            upstream=str(event.order_run_id),
        )
        await self.scheduler.start_in(conn, command, trigger_cause(listener, joined or [event]))

    async def fire_coalesced(self) -> int:
        """Fire coalescing triggers whose debounce window has passed since the last event."""
        fired = 0
        async with self.scheduler.transaction() as conn:
            index = await self._index(conn)
            now = self.scheduler.clock()
            for trigger_id, kitchen, arrived_at, event in await db.held_for_debounce(conn):
                listener = index.listener(trigger_id, kitchen)
                if listener is None or not debounce_over(listener.trigger, arrived_at, now):
                    continue
                await db.release_debounced(conn, trigger_id, kitchen)
                await self.fire(conn, listener, event)
                fired += 1
        return fired
