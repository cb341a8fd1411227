"""Use cases: take an attempt (dedup + StepStarted), run it in the pool, finish it, cancel it.

Stopping a replica (the runtime has already left the consumer group, so nothing new arrives)
lets running attempts finish within `shutdown_grace_s`, then stops the rest and reports them
with error kind `shutdown`, so the scheduler dispatches them again at once instead of waiting
for their leases. Attempts a killed predecessor left `running` are marked `lost` at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from sous_common import outbox
from sous_common.consuming import TRANSIENT
from sous_common.db import AnyConnection, transaction
from sous_common.logs import get_logger
from sous_common.runtime import Runtime
from sous_contracts.envelope import utc_now
from sous_contracts.steps import (
    CancelStep,
    ExecuteStep,
    StepError,
    StepFinished,
    StepHeartbeat,
    StepStarted,
)
from sous_executor import metrics
from sous_executor.adapters import store
from sous_executor.adapters.reaper import Reaper
from sous_executor.adapters.references import References
from sous_executor.adapters.warm import WarmPool
from sous_executor.attempt import cancelled, run_attempt
from sous_executor.domain.predecessors import predecessor_is_dead
from sous_executor.settings import ExecutorSettings

log = get_logger(__name__)

_EARLY_MAX = 10_000
"""Cancels of attempts not here yet that a replica remembers."""

Key = tuple[uuid.UUID, int]

_NOT_RUN = {
    "duplicate": "duplicate ExecuteStep; the attempt was taken before",
    "cancelled": "attempt cancelled while it waited for a slot; not run",
}


_SHUTDOWN_REPORT_S = 5.0
"""Seconds stopped attempts get to record their StepFinished before the replica exits anyway."""


@dataclass
class _Running:
    command: ExecuteStep
    task: asyncio.Task[None] | None = None
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str = ""
    shutdown: bool = False
    """Cancelled because the replica stops, not because the step was."""
    finished: uuid.UUID | None = None
    """The message id of its StepFinished, once recorded in the outbox."""
    relayed: bool = False
    """Set when this replica's relay published its StepFinished: no need to look."""

    def cancel_error(self) -> StepError:
        if self.shutdown:
            return StepError(kind="shutdown", message=self.reason)
        return StepError(kind="cancelled", message=self.reason or "cancelled")


class Executor:
    """One replica's step runner: a bounded pool of attempts fed by the step commands topic."""

    def __init__(self, runtime: Runtime, settings: ExecutorSettings, worker_id: str) -> None:
        self.runtime = runtime
        self.settings = settings
        self.worker_id = worker_id
        self.references = References(settings.secrets_dir)
        self.reaper = Reaper()
        self.warm = WarmPool(settings) if settings.warm_python else None
        self._slots = asyncio.Semaphore(settings.concurrency)
        # Attempts of this replica: waiting for a slot (no task yet) or running.
        self._attempts: dict[Key, _Running] = {}
        self._lingering: set[asyncio.Task[None]] = set()
        """Heartbeats of finished attempts whose StepFinished is not yet on the broker."""
        self._stopping = False
        self._finishing: dict[uuid.UUID, _Running] = {}
        """Attempts by the message id of their StepFinished, until it is relayed."""
        self._early: OrderedDict[tuple[uuid.UUID, int | None], str] = OrderedDict()
        """Cancels heard before their attempt arrived (the most recent `_EARLY_MAX`)."""
        runtime.relayed.append(self._on_relayed)

    @property
    def running(self) -> list[Key]:
        """Attempts running on this replica now."""
        return [k for k, r in self._attempts.items() if r.task is not None]

    @property
    def holding(self) -> int:
        """Attempts of this replica: waiting for a slot, being taken or running."""
        return len(self._attempts)

    async def execute(self, command: ExecuteStep) -> None:
        """Take the attempt durably and hand it to the pool; wait while the pool is full."""
        await self.handle([command])

    async def handle(self, commands: Sequence[ExecuteStep | CancelStep]) -> None:
        """Handle a batch of step commands in order; return once each attempt is taken.

        An attempt is taken (recorded with StepStarted in the outbox) as soon as it has a
        slot, so the takes of a batch share transactions (group commit); waiting for the
        last of them means the offsets are committed only once every take is. The attempts
        run on in the background.
        """
        takes: list[asyncio.Task[None]] = []
        try:
            for command in commands:
                if isinstance(command, CancelStep):
                    await self.cancel(command)
                elif (running := await self._admit(command)) is not None:
                    # A task of its own: a stop cancelling the handler mid-take must not
                    # leave an attempt taken (StepStarted committed) but never run; once
                    # taken it runs, and stop() drains it.
                    takes.append(asyncio.create_task(self._start(running)))
        finally:
            if takes:
                results = await asyncio.shield(asyncio.gather(*takes, return_exceptions=True))
                failed = [r for r in results if isinstance(r, BaseException)]
                if failed:
                    raise failed[0]

    async def _admit(self, command: ExecuteStep) -> _Running | None:
        """Hold a slot for an attempt not here yet and not past its deadline."""
        key = (command.step_run_id, command.attempt)
        ids = {"order_run_id": str(command.order_run_id), "step": command.step}
        if command.deadline is not None and command.deadline < utc_now():
            log.info("ExecuteStep past its deadline; ignored", attempt=command.attempt, **ids)
            return None
        if key in self._attempts:
            log.info("duplicate ExecuteStep; already here", attempt=command.attempt, **ids)
            return None
        running = self._attempts[key] = _Running(command)
        for heard in ((command.step_run_id, command.attempt), (command.step_run_id, None)):
            if heard in self._early:
                running.reason = self._early.pop(heard)
                running.cancel.set()
        try:
            await self._slots.acquire()
        except BaseException:
            del self._attempts[key]
            raise
        return running

    async def _start(self, running: _Running) -> None:
        command = running.command
        key = (command.step_run_id, command.attempt)
        ids = {"order_run_id": str(command.order_run_id), "step": command.step}
        try:
            taken = await self._take(running)
        except BaseException:
            del self._attempts[key]
            self._slots.release()
            raise
        if taken != "started":
            del self._attempts[key]
            self._slots.release()
            log.info(_NOT_RUN[taken], attempt=command.attempt, **ids)
            return
        # A cancel from here on is seen by the attempt itself, which ends as cancelled.
        running.task = asyncio.create_task(self._run(running), name=f"attempt-{key[0]}-{key[1]}")
        log.info("attempt started", attempt=command.attempt, kind=command.kind, **ids)

    async def _take(self, running: _Running) -> Literal["started", "duplicate", "cancelled"]:
        """Record the attempt with StepStarted (and StepFinished if cancelled while waiting)."""
        if self._stopping:  # transient: the message is redelivered, never acknowledged
            raise ConnectionAbortedError("executor is stopping")
        command = running.command
        started = StepStarted(
            **command.caused(producer="executor"),
            order_run_id=command.order_run_id,
            step_run_id=command.step_run_id,
            step=command.step,
            attempt=command.attempt,
            worker_id=self.worker_id,
        )

        # Committed with the takes and finishes of other attempts (sous_common.commits).
        return await self.runtime.commits.run_each(self._take_each, (running, started))

    async def _take_each(
        self, conn: AnyConnection, takes: list[tuple[_Running, StepStarted]]
    ) -> list[Literal["started", "duplicate", "cancelled"]]:
        """Take the attempts of one transaction: one insert, one update for the cancelled."""
        taken = await store.take(conn, [r.command for r, _ in takes], self.worker_id)
        outcomes: list[Literal["started", "duplicate", "cancelled"]] = []
        ends: list[tuple[uuid.UUID, int, str]] = []
        for running, started in takes:
            command = running.command
            if (command.step_run_id, command.attempt) not in taken:
                outcomes.append("duplicate")
            elif running.cancel.is_set():
                ends.append((command.step_run_id, command.attempt, "cancelled"))
                finished = cancelled(command, self.worker_id, running.reason)
                await self.runtime.emit(conn, [started, finished])
                outcomes.append("cancelled")
            else:
                await self.runtime.emit(conn, [started])
                outcomes.append("started")
        await store.finish(conn, ends)
        return outcomes

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AnyConnection]:
        async with transaction(self.runtime.pool) as conn:
            yield conn

    async def cancel(self, command: CancelStep, *, broadcast: bool = False) -> None:
        """Stop the step's attempt(s) running or waiting for a slot here; others are not ours."""
        matches = [
            r
            for (step_run_id, attempt), r in self._attempts.items()
            if step_run_id == command.step_run_id
            and (command.attempt is None or command.attempt == attempt)
        ]
        if not matches and not broadcast:  # every replica hears broadcasts; no noise
            log.info(
                "CancelStep for an attempt not running here; ignored",
                order_run_id=str(command.order_run_id),
                step_run_id=str(command.step_run_id),
                attempt=command.attempt,
            )
        if not matches:
            # The cancel may be heard before its attempt arrives: the group consumer of its
            # partition may wait for a slot while the cancel listener reads on.
            self._early[(command.step_run_id, command.attempt)] = command.reason
            while len(self._early) > _EARLY_MAX:
                self._early.popitem(last=False)
        for r in matches:
            r.reason = command.reason
            r.cancel.set()

    async def _run(self, running: _Running) -> None:
        command = running.command
        key = (command.step_run_id, command.attempt)
        heartbeat = asyncio.create_task(self._heartbeat(running))
        try:
            finished = await run_attempt(
                command,
                settings=self.settings,
                references=self.references,
                worker_id=self.worker_id,
                cancel=running.cancel,
                cancel_error=running.cancel_error,
                reaper=self.reaper,
                warm=self.warm,
            )
            # Known before it is in the outbox: the relay may publish it at once.
            self._finishing[finished.message_id] = running
            heartbeat.add_done_callback(lambda _: self._finishing.pop(finished.message_id, None))
            await self._finish(finished)
            # Until its StepFinished is on the broker the attempt is alive to the scheduler:
            # it beats on while a database outage holds the finish in the outbox.
            running.finished = finished.message_id
            self._lingering.add(heartbeat)
            heartbeat.add_done_callback(self._lingering.discard)
            metrics.ATTEMPTS_FINISHED.labels(command.kind, finished.status.value).inc()
            log.info(
                "attempt finished",
                order_run_id=str(command.order_run_id),
                step=command.step,
                attempt=command.attempt,
                status=finished.status.value,
                duration_s=round(finished.duration_s, 3),
            )
        finally:
            if heartbeat not in self._lingering:
                heartbeat.cancel()
            self._attempts.pop(key, None)
            self._slots.release()

    async def _finish(self, finished: StepFinished) -> None:
        backoff = 0.1
        while True:  # the finish must reach the outbox; the database may be away for a while
            try:
                await self.runtime.commits.run_each(self._record_finishes, finished)
                return
            except TRANSIENT as exc:
                log.warning("cannot record StepFinished; retrying", error=repr(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _on_relayed(self, message_ids: list[uuid.UUID]) -> None:
        for message_id in message_ids:
            if (running := self._finishing.pop(message_id, None)) is not None:
                running.relayed = True

    async def _unrelayed(self, running: _Running) -> bool:
        """Whether an attempt's StepFinished still waits in the outbox (or cannot be seen)."""
        if running.relayed:
            return False  # this replica's relay published it; another's leaves us to look
        message_id = running.finished
        assert message_id is not None

        async def look() -> bool:
            async with self.runtime.pool.acquire() as conn:
                return await outbox.pending(conn, message_id)

        try:
            return await asyncio.wait_for(look(), running.command.heartbeat_interval_s)
        except TRANSIENT:  # the database is away or slow, so the finish may be held there
            return True

    async def _record_finishes(
        self, conn: AnyConnection, finishes: list[StepFinished]
    ) -> list[None]:
        """Record the attempts that finished together: one update, their StepFinished."""
        ends = [(f.step_run_id, f.attempt, f.status.value) for f in finishes]
        await store.finish(conn, ends)
        await self.runtime.emit(conn, finishes)
        return [None] * len(finishes)

    async def _heartbeat(self, running: _Running) -> None:
        # Heartbeats carry no state, so they skip the outbox: a lost one is covered by the
        # next, and a database outage must not make a healthy attempt look dead.
        command = running.command
        while True:
            await asyncio.sleep(command.heartbeat_interval_s)
            if running.finished is not None and not await self._unrelayed(running):
                return  # its StepFinished is on the broker: the scheduler has the end
            beat = StepHeartbeat(
                **command.caused(producer="executor"),
                order_run_id=command.order_run_id,
                step_run_id=command.step_run_id,
                attempt=command.attempt,
                worker_id=self.worker_id,
            )
            try:
                await asyncio.wait_for(self.runtime.publish_now(beat), command.heartbeat_interval_s)
            except Exception as exc:
                log.warning("heartbeat not sent", error=repr(exc), step=command.step)

    async def start(self) -> None:
        """Mark what killed predecessors left running; start the reaper before the first step."""
        async with self._transaction() as conn:
            owners = await store.running_owners(conn)
            dead = [w for w in owners if predecessor_is_dead(w, self.worker_id, _pid_alive)]
            marked = await store.mark_lost(conn, dead) if dead else 0
        if marked:
            log.warning("attempts of dead predecessors marked lost", count=marked, workers=dead)
        self.reaper.start()

    async def stop(self) -> None:
        """Let running attempts finish within the grace; stop and report the rest as `shutdown`.

        The runtime calls this after the replica left its consumer group, so nothing new
        arrives; `_take` refuses anything still in flight.
        """
        self._stopping = True
        tasks = {r.task for r in self._attempts.values() if r.task is not None}
        if tasks:
            grace = self.settings.shutdown_grace_s
            log.info("stopping: waiting for running attempts", count=len(tasks), grace_s=grace)
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for r in self._attempts.values():
                if r.task in pending:
                    r.reason = f"executor {self.worker_id} stopped; not finished within {grace:g}s"
                    r.shutdown = True
                    r.cancel.set()
            if pending:
                # Each ends as cancelled (kind shutdown) and records its StepFinished.
                _, unreported = await asyncio.wait(pending, timeout=_SHUTDOWN_REPORT_S)
                for task in unreported:  # the database is away: left to the lease and start-up
                    task.cancel()
                for task in unreported:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                log.info(
                    "stopped running attempts",
                    stopped=len(pending),
                    unreported=len(unreported),
                    at=time.time(),
                )
        for heartbeat in list(self._lingering):  # the relay stops too; leases cover the rest
            heartbeat.cancel()
        if self.warm is not None:
            await self.warm.stop()
        self.reaper.stop()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
