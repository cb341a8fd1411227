"""Backfills: one order run per partition of a range, at most `concurrency` at once.

Each command and each batch of run ends is one transaction with its inbox record (DESIGN §5).
The backfill's row is locked while partitions start or end, so two runs ending together on
two replicas never start more than the free slots. A partition's attempt has a run id and an
idempotency key derived from (backfill, partition, attempt): a repeated command, a replay
after a crash or a second replica starts nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sous_common.logs import get_logger
from sous_contracts.backfills import (
    BackfillRejected,
    BackfillStatus,
    BackfillUpdated,
    CancelBackfill,
    PartitionState,
    PartitionUpdate,
    PartitionValue,
    RetryBackfill,
    StartBackfill,
    expand,
)
from sous_contracts.common import RunStatus
from sous_contracts.envelope import Envelope, new_message_id
from sous_contracts.runs import CancelOrderRun, OrderRunFinished, OrderRunRejected, StartOrderRun
from sous_scheduler.adapters import backfills as rows
from sous_scheduler.adapters.backfills import Backfill
from sous_scheduler.domain.backfills import (
    ended,
    free_slots,
    idempotency_key,
    run_id,
    run_params,
    status_of,
)
from sous_scheduler.domain.plan import Rejected, plan_run
from sous_scheduler.service import Scheduler
from sous_scheduler.store import BackfillRows, Tx

log = get_logger(__name__)

BackfillCommand = StartBackfill | CancelBackfill | RetryBackfill


class Backfills:
    """The backfill use cases, over the scheduler that starts and cancels their runs."""

    def __init__(self, scheduler: Scheduler, backfill_rows: BackfillRows = rows) -> None:
        self.scheduler = scheduler
        self.rows = backfill_rows
        self.inbox = f"{scheduler.rt.group_id}:backfills"
        """Run ends are claimed apart from the scheduler's own handling of the same events."""

    async def handle(self, cmd: BackfillCommand) -> None:
        """Start, cancel or retry a backfill."""
        await self.scheduler.refreshing(lambda: self._handle(cmd))

    async def _handle(self, cmd: BackfillCommand) -> None:
        async with self.scheduler.transaction() as conn:
            if not await self.scheduler.store.claim(
                conn, self.scheduler.rt.group_id, cmd.message_id
            ):
                return
            if isinstance(cmd, StartBackfill):
                await self._start(conn, cmd)
                return
            backfill = await self.rows.for_update(conn, cmd.backfill_id)
            if backfill is None:
                await self._reject(conn, cmd, f"no backfill {cmd.backfill_id}")
            elif isinstance(cmd, CancelBackfill):
                await self._cancel(conn, backfill, cmd)
            else:
                await self._retry(conn, backfill, cmd)

    async def _start(self, conn: Tx, cmd: StartBackfill) -> None:
        values = expand(cmd.range)  # the command validated it; this cannot fail here
        first = self._run_command(cmd, None, values[0], 1)
        try:
            planned = await self._plan(conn, first)
        except Rejected as exc:
            await self._reject(conn, cmd, str(exc))
            return
        if not await self.rows.insert(conn, cmd, planned[0], planned[1], values):
            log.info("backfill exists already", backfill_id=str(cmd.backfill_id))
            return
        log.info("backfill started", backfill_id=str(cmd.backfill_id), partitions=len(values))
        backfill = await self.rows.for_update(conn, cmd.backfill_id)
        assert backfill is not None
        await self._fill(conn, backfill, cmd, [])

    async def _plan(self, conn: Tx, cmd: StartOrderRun) -> tuple[str, str]:
        """Check the first partition's run would start; return its variation and kitchen."""
        for again in (False, True):
            catalog = await self.scheduler.store.catalog(
                conn, cmd.domain, cmd.recipe, kitchen=cmd.kitchen, variation=cmd.variation
            )
            try:
                state = plan_run(cmd, catalog, now=self.scheduler.clock(), new_id=new_message_id)
            except Rejected:
                # What it names may have been applied a moment ago: look once more.
                if again or not self.scheduler.look_again(cmd.occurred_at):
                    raise
                continue
            return state.variation, state.kitchen
        raise AssertionError("unreachable")

    def _run_command(
        self, cmd: StartBackfill, backfill: Backfill | None, value: PartitionValue, attempt: int
    ) -> StartOrderRun:
        key = str(value)
        return StartOrderRun(
            producer="scheduler",
            causation_id=cmd.message_id,
            order_run_id=run_id(cmd.backfill_id, key, attempt),
            domain=cmd.domain,
            recipe=cmd.recipe,
            variation=backfill.variation if backfill else cmd.variation,
            kitchen=backfill.kitchen if backfill else cmd.kitchen,
            params=run_params(cmd, value),
            idempotency_key=idempotency_key(cmd.backfill_id, key, attempt),
            principal=cmd.principal,
            backfill_id=cmd.backfill_id,
            fire_triggers=cmd.downstream,
        )

    async def _fill(
        self,
        conn: Tx,
        backfill: Backfill,
        cause: Envelope,
        changed: list[PartitionUpdate],
    ) -> None:
        """Start waiting partitions into the free slots, then publish the backfill's state."""
        counts = await self.rows.counts(conn, backfill.id)
        free = free_slots(backfill.command.concurrency, counts, backfill.cancelled is not None)
        for waiting in await self.rows.first_waiting(conn, backfill.id, free):
            attempt = waiting.attempt + 1
            start = self._run_command(backfill.command, backfill, waiting.value, attempt)
            start = start.model_copy(update={"causation_id": cause.message_id})
            await self.rows.mark_running(
                conn, backfill.id, waiting.key, attempt, start.order_run_id
            )
            await self.scheduler.start_in(conn, start)
            changed.append(
                PartitionUpdate(
                    key=waiting.key,
                    state=PartitionState.RUNNING,
                    order_run_id=start.order_run_id,
                    attempt=attempt,
                )
            )
        if free:
            counts = await self.rows.counts(conn, backfill.id)
        status = status_of(counts, backfill.cancelled is not None)
        await self.rows.save(conn, backfill.id, status, backfill.cancelled)
        cmd = backfill.command
        await self.scheduler.rt.emit(
            conn,
            [
                BackfillUpdated(
                    producer="scheduler",
                    causation_id=cause.message_id,
                    backfill_id=backfill.id,
                    domain=cmd.domain,
                    recipe=cmd.recipe,
                    variation=backfill.variation,
                    kitchen=backfill.kitchen,
                    range=cmd.range,
                    concurrency=cmd.concurrency,
                    downstream=cmd.downstream,
                    status=status,
                    counts=counts,
                    partitions=changed,
                    principal=cmd.principal,
                    reason=backfill.cancelled,
                )
            ],
        )

    async def _cancel(self, conn: Tx, backfill: Backfill, cmd: CancelBackfill) -> None:
        if backfill.cancelled is not None or backfill.status is not BackfillStatus.RUNNING:
            await self._reject(conn, cmd, f"backfill {backfill.id} has ended ({backfill.status})")
            return
        reason = f"backfill cancelled: {cmd.reason}"
        changed = await self.rows.move(
            conn, backfill.id, PartitionState.WAITING, PartitionState.CANCELLED, reason
        )
        for order_run_id in await self.rows.running_runs(conn, backfill.id):
            stop = CancelOrderRun(
                producer="scheduler",
                causation_id=cmd.message_id,
                order_run_id=order_run_id,
                reason=reason,
                principal=cmd.principal,
            )
            await self.scheduler.apply(conn, order_run_id, stop)
        log.info("backfill cancelled", backfill_id=str(backfill.id), reason=cmd.reason)
        cancelled = Backfill(
            backfill.command, backfill.variation, backfill.kitchen, backfill.status, reason
        )
        await self._fill(conn, cancelled, cmd, changed)

    async def _retry(self, conn: Tx, backfill: Backfill, cmd: RetryBackfill) -> None:
        if backfill.cancelled is not None:
            await self._reject(conn, cmd, f"backfill {backfill.id} was cancelled")
            return
        changed = await self.rows.move(
            conn, backfill.id, PartitionState.FAILED, PartitionState.WAITING, None
        )
        if not changed:
            await self._reject(conn, cmd, f"backfill {backfill.id} has no failed partitions")
            return
        log.info("backfill retries failed partitions", backfill_id=str(backfill.id))
        await self._fill(conn, backfill, cmd, changed)

    async def on_run_ends(self, ends: Sequence[OrderRunFinished | OrderRunRejected]) -> None:
        """Record partitions whose runs ended, and start the next ones into their slots."""
        # A refusal names no backfill; the run id tells whether it was a partition's.
        ends = [e for e in ends if isinstance(e, OrderRunRejected) or e.backfill_id is not None]
        if not ends:
            return
        async with self.scheduler.transaction() as conn:
            of_run = await self.rows.backfills_of_runs(conn, [e.order_run_id for e in ends])
            ends = [e for e in ends if e.order_run_id in of_run]
            fresh = await self.scheduler.store.claim_many(
                conn, self.inbox, [e.message_id for e in ends]
            )
            by_backfill: dict[uuid.UUID, list[OrderRunFinished | OrderRunRejected]] = {}
            for end in ends:
                if end.message_id in fresh:
                    fresh.discard(end.message_id)
                    by_backfill.setdefault(of_run[end.order_run_id], []).append(end)
            for backfill_id in sorted(by_backfill):  # lock order: two batches never deadlock
                backfill = await self.rows.for_update(conn, backfill_id)
                if backfill is None:
                    continue
                changed: list[PartitionUpdate] = []
                for end in by_backfill[backfill_id]:
                    status, reason = _outcome(end)
                    update = await self.rows.run_ended(
                        conn, end.order_run_id, ended(status), reason
                    )
                    if update is not None:
                        changed.append(update)
                if changed:
                    await self._fill(conn, backfill, by_backfill[backfill_id][-1], changed)

    async def _reject(self, conn: Tx, cmd: BackfillCommand, reason: str) -> None:
        log.info("backfill command refused", backfill_id=str(cmd.backfill_id), reason=reason)
        await self.scheduler.rt.emit(
            conn,
            [
                BackfillRejected(
                    producer="scheduler",
                    causation_id=cmd.message_id,
                    backfill_id=cmd.backfill_id,
                    command=cmd.type,
                    reason=reason,
                    domain=getattr(cmd, "domain", None),
                    recipe=getattr(cmd, "recipe", None),
                )
            ],
        )


def _outcome(end: OrderRunFinished | OrderRunRejected) -> tuple[RunStatus, str | None]:
    """How a partition's run ended; a refused run counts as failed."""
    if isinstance(end, OrderRunRejected):
        return RunStatus.FAILED, f"refused: {end.reason}"
    return end.status, end.reason
