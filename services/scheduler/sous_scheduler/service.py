"""Use cases of the scheduler: load → decide → save (+ outbox) in one transaction each."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any

from sous_common import tracing
from sous_common.decoding import Refusal
from sous_common.logs import get_logger
from sous_common.metrics import emitted
from sous_common.outbox import Conflict, Record
from sous_contracts.common import RunStatus
from sous_contracts.envelope import Envelope, new_message_id
from sous_contracts.registry import RegistryEntityChanged
from sous_contracts.runs import (
    CancelOrderRun,
    OrderRunDeduplicated,
    OrderRunFinished,
    OrderRunQueued,
    OrderRunRejected,
    RunCause,
    StartOrderRun,
)
from sous_contracts.specs import RecipeSpec
from sous_contracts.steps import StepEventsMark, StepFinished, StepHeartbeat, StepStarted
from sous_contracts.tests import TestSuiteFinished
from sous_contracts.topics import STEP_EVENTS
from sous_scheduler import metrics
from sous_scheduler.adapters import postgres
from sous_scheduler.adapters.lineage import LineageOut
from sous_scheduler.domain.admission import (
    Admission,
    Occupancy,
    admit_counted,
    concurrency_of,
    heads,
    lock_key,
)
from sous_scheduler.domain.decide import Event, decide
from sous_scheduler.domain.events import (
    Begin,
    ChildFinished,
    ClearTimer,
    Context,
    Decision,
    SetTimer,
    TimerFired,
)
from sous_scheduler.domain.leases import paused_since
from sous_scheduler.domain.limits import check_cancel, check_start
from sous_scheduler.domain.plan import Catalog, Rejected, plan_run
from sous_scheduler.domain.registry import spec_problem
from sous_scheduler.domain.state import RunPhase, RunState
from sous_scheduler.pending import PENDING, Pending
from sous_scheduler.settings import SchedulerSettings
from sous_scheduler.store import Host, Store, Tx

log = get_logger(__name__)

Progress = StepStarted | StepHeartbeat | StepFinished | TestSuiteFinished
"""What happens to a run's steps and tests, applied to the run in order."""

_CATCH_UP: ContextVar[bool | None] = ContextVar("sous_scheduler_catch_up", default=None)
"""Inside `Scheduler.refreshing`: whether the registry catch-up for its input has run."""


class NeedsRefresh(Exception):
    """A command names what the registry view lacks: undo, catch up, then handle it again."""

    def __init__(self, since: datetime) -> None:
        super().__init__(f"a registry catch-up begun after {since.isoformat()} is needed")
        self.since = since


class Scheduler:
    """The scheduler's use cases, over one host (transactions, outbox) and one store."""

    def __init__(
        self,
        runtime: Host,
        settings: SchedulerSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        store: Store = postgres,
    ) -> None:
        self.rt = runtime
        self.store = store
        self.settings = settings
        self.clock = clock
        self.refresh_registry: Callable[[], Awaitable[int]] | None = None
        """Re-reads the changelog; set by the app, used when a command names the unknown."""
        self._refreshed_at: datetime | None = None
        self._refresh_lock = asyncio.Lock()
        self._expected_marks: set[int] = set()
        self._catalogs: dict[tuple[str, str, str | None, str | None], Catalog] = {}
        self._catalogs_at: int | None = None
        """The registry view's generation `_catalogs` were read at (or after)."""

    @functools.cached_property
    def lineage(self) -> LineageOut:
        """Where the OpenLineage events of each decision go."""
        return LineageOut(self.settings.openlineage, self.rt.kafka.topic_prefix)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A connection in a transaction, for the use cases beside this class."""
        with emitted() as messages:
            async with self.rt.transaction() as conn:
                yield conn
        metrics.committed(messages)  # reached only when the transaction committed

    @contextlib.asynccontextmanager
    async def batched(self) -> AsyncIterator[Tx]:
        """A transaction whose timers are written once, just before it commits.

        They go in one statement with its outbox rows (`Runtime.transaction` writes those then).
        """
        async with self.transaction() as conn:
            pending = Pending()
            token = PENDING.set(pending)
            try:
                yield conn
            finally:
                PENDING.reset(token)
            await self.store.apply_timers_at_commit(conn, pending.timers)

    async def claim_and_look(
        self, conn: Tx, message_ids: list[uuid.UUID]
    ) -> tuple[set[uuid.UUID], int]:
        """Claim a batch's messages: the fresh ones, and the registry view's generation.

        In a `batched()` transaction, its starts then take the catalogs read before at that
        generation rather than read them again.
        """
        fresh, generation = await self.store.claim_and_look(conn, self.rt.group_id, message_ids)
        if (pending := PENDING.get()) is not None:
            pending.registry_generation = generation
        return fresh, generation

    async def set_timers(
        self, conn: Tx, order_run_id: uuid.UUID, ops: Sequence[SetTimer | ClearTimer]
    ) -> None:
        """Set and clear a run's timers; in a batch transaction, at its end."""
        if (pending := PENDING.get()) is None:
            await self.store.apply_timers(conn, order_run_id, list(ops))
        else:
            pending.timers.setdefault(order_run_id, []).extend(ops)

    def context(self, cause: Envelope | None = None) -> Context:
        """The outside world decide() sees for one input."""
        return Context(
            now=self.clock(),
            new_id=new_message_id,
            cause_id=cause.message_id if cause else None,
            dispatch_lease_s=self.settings.dispatch_lease_s,
            heartbeat_interval_s=self.settings.heartbeat_interval_s,
            lease_factor=self.settings.lease_factor,
        )

    async def fresh(self, conn: Tx, message: Envelope) -> bool:
        """Claim a message in the inbox; False when it was handled before."""
        return await self.store.claim(conn, self.rt.group_id, message.message_id)

    # -- commands ---------------------------------------------------------------------------

    async def start(self, cmd: StartOrderRun) -> None:
        """Validate and start (or queue, or refuse) an order run."""
        await self.start_many([cmd])

    async def on_commands(
        self,
        commands: Sequence[Envelope],
        other: Callable[[Any], Awaitable[None]],
    ) -> None:
        """Handle a batch of order-run commands in their order.

        Each stretch of StartOrderRuns is started in one transaction; any other command
        (a cancel here, a backfill's via `other`) in its own, between them, so the commands
        of one run keep their order.
        """
        starts: list[StartOrderRun] = []
        for command in commands:
            if isinstance(command, StartOrderRun):
                starts.append(command)
                continue
            await self.start_many(starts)
            starts = []
            if isinstance(command, CancelOrderRun):
                await self.cancel(command)
            else:
                await other(command)
        await self.start_many(starts)

    async def start_many(self, commands: Sequence[StartOrderRun]) -> None:
        """Start a batch of runs in one transaction: one inbox claim, one write of effects."""
        if not commands:
            return

        async def attempt() -> None:
            async with self.batched() as conn:
                fresh, _ = await self.claim_and_look(conn, [c.message_id for c in commands])
                todo: list[StartOrderRun] = []
                for cmd in commands:
                    if cmd.message_id in fresh:
                        fresh.discard(cmd.message_id)  # a repeat within the batch counts once
                        todo.append(cmd)
                await self.start_all_in(conn, todo)

        await self.refreshing(attempt)

    async def refreshing(self, attempt: Callable[[], Awaitable[None]]) -> None:
        """Handle an input in `attempt` (one transaction); after a catch-up if it asks for one.

        `look_again` asks for it. The catch-up reads Kafka, for as long as that takes: it runs
        between the two tries, never inside a transaction holding the input's inbox claim or
        any lock.
        """
        token = _CATCH_UP.set(False)
        try:
            try:
                await attempt()
            except NeedsRefresh as needed:
                await self.refresh(needed.since)
                _CATCH_UP.set(True)
                await attempt()
        finally:
            _CATCH_UP.reset(token)

    def look_again(self, since: datetime) -> bool:
        """Whether to look once more for what a command issued at `since` names, not found.

        True once a catch-up begun after the command has finished; False refuses it.

        Raises:
            NeedsRefresh: a catch-up must run first; `refreshing` runs it and the input again.
            Inputs handled outside `refreshing` (triggers, schedules) name what the registry
            view holds already, and are refused at once.
        """
        caught_up = _CATCH_UP.get()
        if self.refresh_registry is None or caught_up is None:
            return False
        if caught_up or (self._refreshed_at is not None and self._refreshed_at > since):
            return True
        raise NeedsRefresh(since)

    async def start_in(self, conn: Tx, cmd: StartOrderRun, cause: RunCause | None = None) -> None:
        """Start a run inside the caller's transaction (commands, triggers, schedules).

        `cause` says why when a schedule or a trigger starts it; else the command is why.
        """
        await self.start_all_in(conn, [cmd], cause)

    async def start_all_in(
        self, conn: Tx, commands: Sequence[StartOrderRun], cause: RunCause | None = None
    ) -> None:
        """Start runs in the caller's transaction, in their order.

        The registry is read once per recipe named; the variations' admission locks are taken
        together in name order (two batches never deadlock) and each variation's runs counted
        under them, in one round trip; the runs are admitted one after the other on those
        counts.
        """
        catalogs: dict[tuple[str, str, str | None, str | None], Catalog] = {}
        planned: list[tuple[StartOrderRun, RunState, RecipeSpec]] = []
        for cmd in commands:
            if (found := await self._plan(conn, cmd, cause, catalogs)) is not None:
                planned.append((cmd, *found))
        firsts: dict[str, RunState] = {}  # by admission lock, its variation's first run
        for _, state, _ in planned:
            firsts.setdefault(lock_key(state.domain, state.recipe, state.variation), state)
        keys = sorted(firsts)
        which = [(firsts[k].domain, firsts[k].recipe, firsts[k].variation) for k in keys]
        counted = await self.store.lock_and_count(
            conn, keys, which, [firsts[k].order_run_id for k in keys]
        )
        counts = dict(zip(which, counted, strict=True))
        for cmd, state, recipe in planned:
            await self._begin_new(conn, cmd, state, recipe, counts)

    async def _plan(
        self,
        conn: Tx,
        cmd: StartOrderRun,
        cause: RunCause | None,
        catalogs: dict[tuple[str, str, str | None, str | None], Catalog],
    ) -> tuple[RunState, RecipeSpec] | None:
        """Plan a command's run; None when it is refused (and answered)."""
        try:
            check_start(cmd)
        except Rejected as exc:  # no registry update can cure it: refused without a catch-up
            await self._reject(conn, cmd, str(exc))
            return None
        which = (cmd.domain, cmd.recipe, cmd.kitchen, cmd.variation)
        if (catalog := catalogs.get(which)) is None:
            catalog = catalogs[which] = await self._catalog(conn, cmd)
        now = self.clock()
        try:
            state = plan_run(cmd, catalog, now=now, new_id=new_message_id, cause=cause)
        except Rejected as exc:
            # What the command names (a recipe, variation, kitchen or a kitchen's parent) may
            # have been applied a moment before it and still be on its way to us: look once
            # more after a changelog catch-up that began after the command was issued.
            if not self.look_again(cmd.occurred_at):
                await self._reject(conn, cmd, str(exc))
                return None
            catalog = catalogs[which] = await self._catalog(conn, cmd, cached=False)
            try:
                state = plan_run(cmd, catalog, now=now, new_id=new_message_id, cause=cause)
            except Rejected as again:
                await self._reject(conn, cmd, str(again))
                return None
        assert catalog.recipe is not None
        if trace := tracing.current_headers():
            state = state.model_copy(update={"trace": trace})
        return state, catalog.recipe

    async def _catalog(self, conn: Tx, cmd: StartOrderRun, *, cached: bool = True) -> Catalog:
        """What the registry view says of the recipe a command names.

        In a batch that read the view's generation (`claim_and_look`), one read at that
        generation or later is as good: nothing has changed since.
        """
        pending = PENDING.get()
        generation = pending.registry_generation if pending is not None and cached else None
        if generation is None:
            return await self.store.catalog(
                conn, cmd.domain, cmd.recipe, kitchen=cmd.kitchen, variation=cmd.variation
            )
        if generation != self._catalogs_at or len(self._catalogs) > 1024:
            self._catalogs, self._catalogs_at = {}, generation
        catalogs = self._catalogs  # what is read goes where it was looked for
        which = (cmd.domain, cmd.recipe, cmd.kitchen, cmd.variation)
        if (found := catalogs.get(which)) is None:
            found = catalogs[which] = await self.store.catalog(
                conn, cmd.domain, cmd.recipe, kitchen=cmd.kitchen, variation=cmd.variation
            )
        return found

    async def _begin_new(
        self,
        conn: Tx,
        cmd: StartOrderRun,
        state: RunState,
        recipe: RecipeSpec,
        counts: dict[tuple[str, str, str], tuple[int, int]],
    ) -> None:
        """Admit and insert a planned run; its variation's lock is held already.

        `counts` are the running and queued runs of each variation seen so far in this
        transaction: a run whose admission concerns only itself moves them on in memory;
        one that moves other runs (queued ones begin, running ones make room) is admitted
        on what the table says, which is then counted again for the next run.
        """
        ctx = self.context(cmd)
        which = (state.domain, state.recipe, state.variation)
        concurrency = concurrency_of(recipe, state.variation)
        if which not in counts:
            counts[which] = await self.store.count_open_runs(conn, *which, state.order_run_id)
        running, queued = counts[which]
        if heads(concurrency, running, queued, state.order_run_id) == (0, 0):
            label = f"{state.domain}/{state.recipe} variation {state.variation}"
            admission = admit_counted(
                concurrency, Occupancy(running, queued), state.order_run_id, label=label
            )
        else:
            del counts[which]
            admission = await self._admission(conn, state, recipe, state.order_run_id)
        if not await self._insert(conn, state, recipe, cmd.idempotency_key, admission, ctx):
            log.info(
                "run exists already",
                order_run_id=str(cmd.order_run_id),
                idempotency_key=cmd.idempotency_key,
            )
            await self._deduplicated(conn, cmd, state)
            return
        if which in counts:
            began = state.order_run_id in admission.begin
            waits = admission.queue_at is not None
            counts[which] = (running + began, queued + waits)
        others = tuple(r for r in admission.begin if r != state.order_run_id)
        await self._carry_out(
            conn, dataclasses.replace(admission, begin=others), recipe, state, ctx
        )
        if admission.queue_at is not None:
            await self.rt.emit(
                conn,
                [
                    OrderRunQueued(
                        producer="scheduler",
                        correlation_id=state.correlation_id,
                        causation_id=cmd.message_id,
                        order_run_id=state.order_run_id,
                        domain=state.domain,
                        recipe=state.recipe,
                        variation=state.variation,
                        kitchen=state.kitchen,
                        position=admission.queue_at,
                    )
                ],
            )

    async def _deduplicated(self, conn: Tx, cmd: StartOrderRun, state: RunState) -> None:
        """Answer a repeated idempotency key with the run it started, so clients follow it."""
        if cmd.idempotency_key is None:
            return
        found = await self.store.run_of_key(
            conn, state.domain, state.recipe, state.kitchen, cmd.idempotency_key
        )
        if found is None or found[0] == cmd.order_run_id:
            return  # a redelivery of the very command that started it
        existing, phase = found
        await self.rt.emit(
            conn,
            [
                OrderRunDeduplicated(
                    producer="scheduler",
                    correlation_id=existing,
                    causation_id=cmd.message_id,
                    order_run_id=cmd.order_run_id,
                    existing_order_run_id=existing,
                    idempotency_key=cmd.idempotency_key,
                    command_message_id=cmd.message_id,
                    domain=state.domain,
                    recipe=state.recipe,
                    kitchen=state.kitchen,
                    status=RunStatus(phase) if RunPhase(phase).final else None,
                )
            ],
        )

    async def refresh(self, since: datetime) -> bool:
        """Make sure a changelog catch-up that began after `since` has finished.

        A catch-up that started after a command was issued has seen everything applied
        before it, so a burst of commands naming unknown recipes costs one catch-up, and a
        command handled while one runs waits for it. True when the caller should look again.
        """
        if self.refresh_registry is None:
            return False
        async with self._refresh_lock:
            if self._refreshed_at is not None and self._refreshed_at > since:
                return True  # a catch-up newer than the command already finished
            began = self.clock()
            await self.refresh_registry()  # a failed catch-up counts as none: the next retries
            self._refreshed_at = began
            return True

    async def _reject(self, conn: Tx, cmd: StartOrderRun, reason: str) -> None:
        log.info("order run rejected", order_run_id=str(cmd.order_run_id), reason=reason)
        await self.rt.emit(
            conn,
            [
                OrderRunRejected(
                    producer="scheduler",
                    correlation_id=cmd.correlation_id or cmd.order_run_id,
                    causation_id=cmd.message_id,
                    order_run_id=cmd.order_run_id,
                    reason=reason,
                    domain=cmd.domain,
                    recipe=cmd.recipe,
                    parent_order_run_id=cmd.parent_order_run_id,
                )
            ],
        )

    async def cancel(self, cmd: CancelOrderRun) -> None:
        """Cancel a run, its steps and its children."""
        async with self.transaction() as conn:
            if not await self.fresh(conn, cmd):
                return
            try:
                check_cancel(cmd)
            except Rejected as exc:
                await self._refuse_cancel(conn, cmd, str(exc))
                return
            if not await self.apply(conn, cmd.order_run_id, cmd):
                await self._refuse_cancel(
                    conn, cmd, f"cannot cancel: no order run {cmd.order_run_id}"
                )

    async def _refuse_cancel(self, conn: Tx, cmd: CancelOrderRun, reason: str) -> None:
        log.info("cancel refused", order_run_id=str(cmd.order_run_id), reason=reason)
        await self.rt.emit(
            conn,
            [
                OrderRunRejected(
                    producer="scheduler",
                    causation_id=cmd.message_id,
                    order_run_id=cmd.order_run_id,
                    reason=reason,
                )
            ],
        )

    # -- events -----------------------------------------------------------------------------

    async def on_run_events(self, events: Sequence[Progress | StepEventsMark]) -> None:
        """Apply a batch of step events, test summaries and read marks in one transaction.

        Each run is locked once and its events are decided in their order; the new states,
        timers, outgoing messages and marks are written in one statement each.
        """
        events = await self._run_events_at_once(events) if events else []
        if not events:
            return
        async with self.batched() as conn:
            # The inbox claim and the lock of the fresh events' runs: one round trip.
            fresh, runs = await self.store.claim_and_lock(
                conn, self.rt.group_id, [(e.message_id, _run_of(e)) for e in events]
            )
            marks: dict[int, list[datetime]] = {}
            todo: list[Progress] = []
            for e in events:
                if e.message_id not in fresh:
                    continue
                fresh.discard(e.message_id)  # a repeat within the batch counts once
                if isinstance(e, StepEventsMark):
                    marks.setdefault(e.partition, []).append(e.occurred_at)
                else:
                    todo.append(e)
            changed: dict[uuid.UUID, RunState] = {}
            timers: dict[uuid.UUID, list[SetTimer | ClearTimer]] = {}
            messages: list[Envelope] = []
            lineage: list[Record] = []
            finished: list[uuid.UUID] = []
            for e in todo:
                if (loaded := runs.get(e.order_run_id)) is None:
                    log.info("event for unknown run", order_run_id=str(e.order_run_id))
                    continue
                state, recipe = loaded
                ctx = self.context(e)
                d = decide(state, recipe, e, ctx)
                if d.state == state and not d.messages and not d.timers:
                    continue
                lineage += self.lineage.records(state, d.state, ctx.now)
                runs[e.order_run_id] = (d.state, recipe)
                changed[e.order_run_id] = d.state
                timers.setdefault(e.order_run_id, []).extend(d.timers)
                messages.extend(d.messages)
                if d.finished:
                    finished.append(e.order_run_id)
            await self.store.save_runs(conn, list(changed.values()), timers)
            await self.rt.emit(conn, messages, lineage)
            before = await self.store.save_marks(conn, {p: max(m) for p, m in marks.items()})
            if (since := paused_since(before, marks, self.settings.mark_interval_s)) is not None:
                s = self.settings
                lease = max(s.dispatch_lease_s, s.heartbeat_interval_s * s.lease_factor)
                until = self.clock() + timedelta(seconds=lease)
                moved = await self.store.extend_leases(conn, since, until)
                log.warning(
                    "read marks paused; leases moved on",
                    since=since.isoformat(),
                    until=until.isoformat(),
                    leases=moved,
                )
            for run_id in finished:
                await self._after_finish(conn, *runs[run_id])

    async def _run_events_at_once(
        self, events: Sequence[Progress | StepEventsMark]
    ) -> list[Progress | StepEventsMark]:
        """Handle the usual runs of a batch in one statement; return the events left over.

        A run whose events are all new, that is known here at a row version, and that each
        event moves on without ending it, is decided on that state. The claims, states,
        timers and messages of all such runs go in one statement with no transaction around
        it (`Host.at_once`): one round trip where the locking path takes five. Every other
        event (read marks, runs not known here, ends, which admit others) is left for the
        locking path. A run written since, or an event seen before, undoes the statement;
        then the whole batch is left over and decided again on what is stored.
        """
        by_run: dict[uuid.UUID, list[Progress]] = {}
        for e in events:
            if not isinstance(e, StepEventsMark):
                by_run.setdefault(e.order_run_id, []).append(e)
        cached = self.store.cached_runs(list(by_run))
        decided: dict[uuid.UUID, tuple[Any, RunState]] = {}
        timers: dict[uuid.UUID, list[SetTimer | ClearTimer]] = {}
        messages: list[Envelope] = []
        lineage: list[Record] = []
        for run_id, run_events in by_run.items():
            if run_id not in cached or len({e.message_id for e in run_events}) < len(run_events):
                continue  # a repeat within the batch: the locking path counts it once
            version, state, recipe = cached[run_id]
            out: list[Envelope] = []
            records: list[Record] = []
            ops: list[SetTimer | ClearTimer] = []
            for e in run_events:
                ctx = self.context(e)
                d = decide(state, recipe, e, ctx)
                if d.finished or (d.state == state and not d.messages and not d.timers):
                    break  # an end admits others, a no-op may be a repeat: both need locks
                records += self.lineage.records(state, d.state, ctx.now)
                state = d.state
                ops += d.timers
                out += d.messages
            else:
                decided[run_id] = (version, state)
                timers[run_id] = ops
                messages += out
                lineage += records
        if not decided:
            return list(events)
        try:
            with emitted() as queued:
                async with self.rt.at_once() as conn:
                    claims = [e.message_id for r in decided for e in by_run[r]]
                    await self.store.claim_all(conn, self.rt.group_id, claims)
                    await self.store.save_runs_as_of(conn, list(decided.values()), timers)
                    await self.rt.emit(conn, messages, lineage)
        except Conflict:
            metrics.at_once_conflict()
            return list(events)
        metrics.committed(queued)
        return [e for e in events if isinstance(e, StepEventsMark) or e.order_run_id not in decided]

    async def on_run_ends(self, ends: Sequence[OrderRunFinished | OrderRunRejected]) -> None:
        """Tell parent runs that their nested children ended (or were refused).

        The parent learns it from the child's event like any other consumer, so a child's end
        and its parent's next step are two transactions, never one reaching into the other.
        """
        ends = [e for e in ends if e.parent_order_run_id is not None]
        if not ends:
            return
        async with self.transaction() as conn:
            fresh = await self.store.claim_many(
                conn, self.rt.group_id, [e.message_id for e in ends]
            )
            for end in ends:
                if end.message_id not in fresh or end.parent_order_run_id is None:
                    continue
                fresh.discard(end.message_id)
                if isinstance(end, OrderRunRejected):
                    child = ChildFinished(
                        end.order_run_id, RunStatus.FAILED, f"refused: {end.reason}"
                    )
                else:
                    child = ChildFinished(
                        end.order_run_id, end.status, end.reason, end.outputs, end.tests
                    )
                await self.apply(conn, end.parent_order_run_id, child)

    async def mark_step_events(self) -> None:
        """Write a mark to every partition of the step events.

        Handled, a mark moves its partition's lease watermark to the time it was written.
        """
        partitions = await self.rt.partitions(STEP_EVENTS)
        if partitions != self._expected_marks:  # at start, and when partitions are added
            async with self.transaction() as conn:
                await self.store.expect_marks(conn, partitions)
            self._expected_marks = partitions
        now = self.clock()
        for partition in sorted(partitions):
            mark = StepEventsMark(producer="scheduler", partition=partition, occurred_at=now)
            await self.rt.publish_now(mark, partition=partition)

    async def on_registry_change(self, change: RegistryEntityChanged) -> None:
        """Keep the registry view current.

        Raises:
            Refusal: the spec cannot be read as its kind's; the record is dead-lettered.
        """
        if (problem := spec_problem(change)) is not None:
            raise Refusal(problem, "invalid")
        async with self.transaction() as conn:
            await self.store.upsert_entity(conn, change)

    async def fire_due_timers(self, limit: int = 100) -> int:
        """Fire due timers one transaction each; return how many fired."""
        fired = 0
        while fired < limit:
            async with self.transaction() as conn:
                due = await self.store.claim_due_timer(conn, self.clock())
                if due is None:
                    return fired
                run_id, kind, step, attempt = due
                await self.apply(conn, run_id, TimerFired(kind, step, attempt))
            fired += 1
        return fired

    # -- the one place decisions are applied -----------------------------------------------

    async def apply(self, conn: Tx, order_run_id: uuid.UUID, event: Event) -> bool:
        """Lock the run, decide, save, emit; False when the run is unknown."""
        loaded = await self.store.run_for_update(conn, order_run_id)
        if loaded is None:
            log.info("event for unknown run", order_run_id=str(order_run_id))
            return False
        state, recipe = loaded
        cause = event if isinstance(event, Envelope) else None
        if isinstance(event, TimerFired):  # nothing carries a trace here but the run's state
            with tracing.resumed(state.trace, f"timer {event.kind}"):
                await self._apply(conn, state, recipe, event, self.context(cause))
        else:
            await self._apply(conn, state, recipe, event, self.context(cause))
        return True

    async def _apply(
        self, conn: Tx, state: RunState, recipe: RecipeSpec, event: Event, ctx: Context
    ) -> Decision:
        d = decide(state, recipe, event, ctx)
        if d.state == state and not d.messages and not d.timers:
            return d
        await self.store.save_run(conn, d.state)
        await self._effects(conn, state, d, recipe, ctx)
        return d

    async def _insert(
        self,
        conn: Tx,
        state: RunState,
        recipe: RecipeSpec,
        key: str | None,
        admission: Admission,
        ctx: Context,
    ) -> bool:
        """Insert a new run; False when it exists already (its id or idempotency key).

        A run the admission lets begin is inserted begun: one write of its row, not two.
        """
        if state.order_run_id not in admission.begin:
            return await self.store.insert_run(conn, state, recipe, key)
        d = decide(state, recipe, Begin(), ctx)
        if not await self.store.insert_run(conn, d.state, recipe, key):
            return False
        await self._effects(conn, state, d, recipe, ctx)
        return True

    async def _effects(
        self, conn: Tx, before: RunState, d: Decision, recipe: RecipeSpec, ctx: Context
    ) -> None:
        """Write a saved decision's timers and messages; a run that ended frees its slot."""
        await self.set_timers(conn, d.state.order_run_id, d.timers)
        await self.rt.emit(conn, d.messages, self.lineage.records(before, d.state, ctx.now))
        if d.finished:
            await self._after_finish(conn, d.state, recipe)

    async def _admit(
        self, conn: Tx, state: RunState, recipe: RecipeSpec, new_run: uuid.UUID | None = None
    ) -> Admission:
        """Decide admission of the run's variation under its lock.

        One admission at a time per variation, so the limit holds across replicas, and two
        runs ending together on two partitions give their slots to two queued runs, never
        both to the same one.
        """
        which = (state.domain, state.recipe, state.variation)
        key = lock_key(*which)
        [counted] = await self.store.lock_and_count(conn, [key], [which], [new_run])
        return await self._admission(conn, state, recipe, new_run, counted)

    async def _admission(
        self,
        conn: Tx,
        state: RunState,
        recipe: RecipeSpec,
        new_run: uuid.UUID | None,
        counted: tuple[int, int] | None = None,
    ) -> Admission:
        """Decide admission of the run's variation; the caller holds its lock.

        `counted` are its running and queued runs when the caller counted them under it.
        """
        which = (state.domain, state.recipe, state.variation)
        concurrency = concurrency_of(recipe, state.variation)
        if counted is None:
            counted = await self.store.count_open_runs(conn, *which, new_run)
        running, queued = counted
        want_running, want_queued = heads(concurrency, running, queued, new_run)
        occupancy = Occupancy(
            running,
            queued,
            tuple(await self.store.oldest_open_runs(conn, *which, "running", want_running)),
            tuple(await self.store.oldest_open_runs(conn, *which, "queued", want_queued, new_run)),
        )
        label = f"{state.domain}/{state.recipe} variation {state.variation}"
        return admit_counted(concurrency, occupancy, new_run, label=label)

    async def _carry_out(
        self,
        conn: Tx,
        admission: Admission,
        recipe: RecipeSpec,
        new: RunState | None = None,
        ctx: Context | None = None,
    ) -> None:
        """Apply an admission in the caller's transaction; `new` is the run being admitted.

        Runs begin before any is cancelled, so the slots the cancelled ones free are taken
        already when their ends look for queued runs to hand them to.
        """
        events: list[tuple[uuid.UUID, Event]] = [(run_id, Begin()) for run_id in admission.begin]
        events += [
            (run_id, CancelOrderRun(order_run_id=run_id, reason=admission.reason))
            for run_id in admission.cancel
        ]
        for run_id, event in events:
            if new is not None and ctx is not None and run_id == new.order_run_id:
                await self._apply(conn, new, recipe, event, ctx)  # inserted a moment ago
            else:
                await self.apply(conn, run_id, event)

    async def _after_finish(self, conn: Tx, state: RunState, recipe: RecipeSpec) -> None:
        log.info(
            "order run finished",
            order_run_id=str(state.order_run_id),
            phase=state.phase.value,
            reason=state.reason,
        )
        await self._carry_out(conn, await self._admit(conn, state, recipe), recipe)


def _run_of(event: Progress | StepEventsMark) -> uuid.UUID | None:
    """The run an event moves on; None for a read mark."""
    return None if isinstance(event, StepEventsMark) else event.order_run_id
