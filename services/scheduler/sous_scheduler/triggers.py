"""Cross-domain triggers: completion events start downstream runs (DESIGN §5.6).

A firing is recorded as (trigger, upstream message id) in the same transaction that starts
the run, so a redelivered event or a second replica cannot start it twice. Join state of
`all` / `at_least` triggers lives in `trigger_joins`, where operators can see it; keyed
triggers keep one window per key in `join_windows`, and a window that ends half-joined is
published as JoinWindowExpired.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sous_common.db import AnyConnection
from sous_common.logs import get_logger
from sous_contracts.runs import DomainRunCompleted
from sous_scheduler.adapters import monitors as postgres_monitors
from sous_scheduler.adapters.postgres import recipe_from
from sous_scheduler.domain.params import ParamError
from sous_scheduler.domain.triggers import (
    JoinWindow,
    Listener,
    TriggerIndex,
    Upstream,
    debounce_over,
    held_event,
    join_arrive,
    join_cutoff,
    join_lock,
    join_needed,
    listeners,
    matching_patterns,
    partition_key,
    start_command,
    too_deep,
    trigger_cause,
    window_expired,
)
from sous_scheduler.monitors import Monitors
from sous_scheduler.service import Scheduler
from sous_scheduler.store import MonitorRows, Tx

log = get_logger(__name__)


class Triggers:
    """Matches completion events against the triggers of the versions their kitchen runs."""

    def __init__(self, scheduler: Scheduler, monitor_rows: MonitorRows = postgres_monitors) -> None:
        self.scheduler = scheduler
        self.store = scheduler.store
        self._generation: object = None
        self._index_now = TriggerIndex({}, {})
        self.monitors = Monitors(scheduler, self, monitor_rows)

    async def index(self, conn: AnyConnection) -> TriggerIndex:
        """The triggers of the registry view (rebuilt when it changed)."""
        return await self._index(conn)

    async def _index(self, conn: Tx, generation: object = None) -> TriggerIndex:
        # Cheap generation check (or the caller's, read in this transaction); the registry
        # view is shared by every replica.
        if generation is None:
            generation = await self.store.registry_generation(conn)
        if generation != self._generation:
            versions: dict[tuple[str, str], dict[str | None, list[Listener]]] = {}
            for row in await self.store.recipe_versions(conn):
                found = listeners(row["domain"], row["name"], recipe_from(row["spec"]))
                versions.setdefault((row["domain"], row["name"]), {})[row["kitchen"]] = found
            self._index_now = TriggerIndex(versions, await self.store.kitchens(conn))
            self._generation = generation
        return self._index_now

    async def on_completed(self, event: DomainRunCompleted) -> None:
        """Start every downstream run this event triggers, with the versions its kitchen runs."""
        await self.on_completed_many([event])

    async def on_completed_many(self, events: Sequence[DomainRunCompleted]) -> None:
        """Take a batch of completion events in one transaction, in their order.

        The registry's triggers and monitors are looked up once for the batch; each event's
        firings are recorded per (trigger, event) as one at a time would.
        """
        if not events or await self._unheard(events):
            return
        async with self.scheduler.batched() as conn:
            ids = [e.message_id for e in events]
            fresh, generation = await self.scheduler.claim_and_look(conn, ids)
            taken: list[DomainRunCompleted] = []
            for event in events:
                if event.message_id not in fresh:
                    continue
                fresh.discard(event.message_id)  # a repeat within the batch counts once
                if not event.fire_triggers:  # a backfill's run, without `downstream`
                    log.info("triggers suppressed", order_run_id=str(event.order_run_id))
                    continue
                taken.append(event)
            # One look at the registry view serves the batch's monitors and triggers.
            index = await self._index(conn, generation)
            heard = [
                (event, listener, patterns)
                for event in taken
                for listener in index.listening(event.domain, event.kitchen)
                if (patterns := matching_patterns(listener, event))
            ]
            # Every join lock of the batch first, in name order: two batches holding sides
            # of the same joins never wait for each other in a circle.
            for name in sorted({n for e, lst, _ in heard if (n := join_lock(lst, e))}):
                await self.store.lock(conn, name)
            for event in taken:
                await self.monitors.on_completed(conn, event, generation)
            for event, listener, patterns in heard:
                await self._consider(conn, listener, patterns, event)

    async def _unheard(self, events: Sequence[DomainRunCompleted]) -> bool:
        """Note `events` as seen and return True when no trigger or monitor listens to them.

        Most completions start nothing (the end of a run without downstream). Their batch
        needs no transaction: one read of the registry view's generation, to know that what
        is known here is current, and the inbox claim on its own (two round trips, not
        four). A batch that what is known here hears takes the transaction at once: it
        reads the generation there.
        """
        # What is known here, as one: another batch may load a newer index meanwhile.
        index, generation = self._index_now, self._generation
        if self._heard(events, index, generation):
            return False
        async with self.scheduler.rt.at_once() as conn:
            if await self.store.registry_generation(conn) != generation:
                return False
            await self.store.claim_many(
                conn, self.scheduler.rt.group_id, [e.message_id for e in events]
            )
        return True

    def _heard(
        self, events: Sequence[DomainRunCompleted], index: TriggerIndex, generation: object
    ) -> bool:
        """True when something may listen to `events` (by `index`, read at `generation`)."""
        for event in events:
            if not event.fire_triggers or self.monitors.listen(event, generation) is not False:
                return True  # a backfill's run is logged as such; monitors need a look
            listening = index.listening(event.domain, event.kitchen)
            if any(matching_patterns(listener, event) for listener in listening):
                return True
        return False

    async def _consider(
        self,
        conn: Tx,
        listener: Listener,
        patterns: list[int],
        event: DomainRunCompleted,
    ) -> None:
        trigger, now = listener.trigger, self.scheduler.clock()
        if trigger.key is not None:
            await self._keyed(conn, listener, patterns, event)
            return
        if trigger.all is not None or trigger.at_least is not None:
            # One arrival at a time: two sides counted at once would each miss the other.
            await self._join_lock(conn, listener, event)
            present = await self.store.join_arrived(
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
            joined = await self.store.clear_join(conn, listener.trigger_id, event.kitchen)
            await self.fire(conn, listener, event, joined=joined)
            return
        if trigger.mode == "coalesce":
            await self.store.hold_for_debounce(conn, listener.trigger_id, event.kitchen, event, now)
            return
        await self.fire(conn, listener, event)

    async def _keyed(
        self,
        conn: Tx,
        listener: Listener,
        patterns: list[int],
        event: DomainRunCompleted,
    ) -> None:
        """Join the event with the others of its partition key, in that key's window."""
        try:
            key = partition_key(listener.trigger, event)
        except ParamError as exc:
            # Only this trigger refuses the event: nothing is stored for the key, the batch
            # and the event's other triggers go on.
            reason = f"refused: key {listener.trigger.key!r}: {exc}"
            log.warning(
                "trigger key refused",
                trigger=listener.trigger_id,
                upstream_message_id=str(event.message_id),
                upstream=str(event.order_run_id),
                reason=reason,
            )
            await self.store.record_firing(
                conn, listener.trigger_id, event.message_id, None, reason
            )
            return
        assert key is not None
        trigger_id, kitchen, ctx = listener.trigger_id, event.kitchen, self.scheduler.context(event)
        # One arrival of a key at a time, across consumers and replicas.
        await self._join_lock(conn, listener, event)
        window = await self.store.join_window(conn, trigger_id, kitchen, key)
        step = join_arrive(listener.trigger, window, patterns, event, ctx.now, ctx.new_id)
        if step.expired is not None:
            await self._expired(conn, listener, kitchen, key, step.expired)
        await self.store.save_join_window(conn, trigger_id, kitchen, key, step.window)
        if step.fire:
            await self.fire(conn, listener, event, key, step.arrived)

    async def _join_lock(self, conn: Tx, listener: Listener, event: DomainRunCompleted) -> None:
        """Take the join's lock (again: the batch took it first; taking it twice is free)."""
        name = join_lock(listener, event)
        assert name is not None, "a join arrival always has a lock"
        await self.store.lock(conn, name)

    async def _expired(
        self, conn: Tx, listener: Listener, kitchen: str, key: str, window: JoinWindow
    ) -> None:
        ctx = self.scheduler.context()
        if expired := window_expired(listener, kitchen, key, window, ctx):
            log.info("join window expired", trigger=listener.trigger_id, key=key)
            await self.scheduler.rt.emit(conn, [expired])

    async def expire_windows(self, limit: int = 100) -> int:
        """Publish the keyed join windows that ended half-joined; return how many ended."""
        ended = 0
        while ended < limit:
            async with self.scheduler.transaction() as conn:
                claimed = await self.store.claim_expired_window(conn, self.scheduler.clock())
                if claimed is None:
                    return ended
                trigger_id, kitchen, key, window = claimed
                listener = (await self._index(conn)).listener(trigger_id, kitchen)
                if listener is not None:  # a trigger removed since: its windows just end
                    await self._expired(conn, listener, kitchen, key, window)
            ended += 1
        return ended

    async def fire(
        self,
        conn: Tx,
        listener: Listener,
        event: DomainRunCompleted,
        key: str | None = None,
        joined: Sequence[Upstream] = (),
        *,
        released: uuid.UUID | None = None,
    ) -> None:
        """Start the downstream run once per (trigger, upstream event).

        `joined` are every arrival of a join that fired (the event among them): the run's
        upstream in its cause. A keyed trigger's run gets `key`. A `require: monitors_pass`
        trigger whose upstream datasets' monitors do not pass is held instead (TriggerHeld
        names the run it will start); `released` is that run's id, when they passed.
        """
        ctx = self.scheduler.context(event)
        run_id = released if released is not None else ctx.new_id()
        outcome = too_deep(listener, event, self.scheduler.settings.max_causation_depth)
        outcome = outcome or "started"
        datasets: list[str] = []
        if (
            outcome == "started"
            and listener.trigger.require == "monitors_pass"
            and released is None
        ):
            held, datasets = await self.monitors.hold_reason(conn, event)
            outcome = f"held: {held}" if held else outcome
        if released is not None:
            first = await self.monitors.rows.release(
                conn, listener.trigger_id, event.message_id, run_id
            )
        else:
            first = await self.store.record_firing(
                conn,
                listener.trigger_id,
                event.message_id,
                run_id if outcome == "started" else None,
                outcome,
            )
        if not first or outcome != "started":
            if first and outcome.startswith("held: "):
                await self.monitors.rows.hold(
                    conn, listener.trigger_id, event, datasets, key, run_id
                )
                await self.scheduler.rt.emit(
                    conn, [held_event(listener, event, run_id, datasets, outcome, ctx)]
                )
            if first and outcome != "started":
                log.warning("trigger not fired", trigger=listener.trigger_id, reason=outcome)
            return
        try:
            command = start_command(listener, event, run_id, ctx, key)
        except ParamError as exc:
            log.warning(
                "trigger params do not resolve", trigger=listener.trigger_id, error=str(exc)
            )
            await self.store.refuse_firing(conn, listener.trigger_id, event.message_id, str(exc))
            return
        log.info(
            "trigger fired",
            trigger=listener.trigger_id,
            order_run_id=str(run_id),
            upstream=str(event.order_run_id),
        )
        await self.scheduler.start_in(conn, command, trigger_cause(listener, joined or [event]))

    async def fire_due(self) -> int:
        """Fire closed coalescing windows and publish expired join windows; return how many.

        Both are durable time of the triggers, looked at on the timers' cadence (not the cron
        loop's), so a debounce or a join window ends when it is due.
        """
        return await self.fire_coalesced() + await self.expire_windows()

    async def fire_coalesced(self) -> int:
        """Fire coalescing triggers whose debounce window has passed since the last event."""
        fired = 0
        async with self.scheduler.transaction() as conn:
            held = await self.store.held_for_debounce(conn)
            if not held:
                return 0
            index = await self._index(conn)
            now = self.scheduler.clock()
            for trigger_id, kitchen, arrived_at, event in held:
                listener = index.listener(trigger_id, kitchen)
                if listener is None or not debounce_over(listener.trigger, arrived_at, now):
                    continue
                await self.store.release_debounced(conn, trigger_id, kitchen)
                await self.fire(conn, listener, event)
                fired += 1
        return fired
