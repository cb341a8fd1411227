"""One attempt from start to StepFinished: resolve, run with timeout and cancel, redact."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sous_common.references import Scope
from sous_contracts.common import LOG_TAIL_MAX, Outputs, StepStatus
from sous_contracts.steps import ExecuteStep, StepError, StepFinished
from sous_executor.adapters.context import StepContext
from sous_executor.adapters.reaper import Reaper
from sous_executor.adapters.references import References
from sous_executor.adapters.runners import PROCESS_KINDS, RUNNERS
from sous_executor.adapters.warm import WarmPool
from sous_executor.domain.outcome import Outcome, StepFailure
from sous_executor.domain.redact import Redactor
from sous_executor.domain.tail import LogTail
from sous_executor.redaction import LOG_REDACTOR
from sous_executor.settings import ExecutorSettings


def needed_connections(command: ExecuteStep) -> set[str]:
    """Connections the attempt resolves, so a connection another step needs cannot fail it.

    Processes get every one (they may use any through the environment), `sql` only the
    one it names, `http` and `noop` none.
    """
    if command.kind in PROCESS_KINDS:
        return set(command.connections)
    if command.kind == "sql":
        return {str(command.spec.get("connection"))}
    return set()


async def _supervise(
    context: StepContext, cancel: asyncio.Event, cancel_error: Callable[[], StepError]
) -> Outcome:
    runner = RUNNERS[context.command.kind]
    work: asyncio.Task[Outputs] = asyncio.ensure_future(runner(context))
    stop = asyncio.create_task(cancel.wait())
    try:
        await asyncio.wait(
            {work, stop}, timeout=context.command.timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stop.cancel()
        if not work.done():
            work.cancel()  # the runner kills its process group on the way out
            with contextlib.suppress(asyncio.CancelledError):
                await work
    if work.cancelled():
        if cancel.is_set():
            error = cancel_error()
            context.tail.line(f"[sous] cancelled: {error.message}")
            return Outcome(StepStatus.CANCELLED, error=error)
        message = f"timed out after {context.command.timeout_s:g}s"
        if context.command.kind in PROCESS_KINDS:
            message += "; its process group was killed"
        context.tail.line(f"[sous] {message}")
        return Outcome(StepStatus.TIMED_OUT, error=StepError(kind="timeout", message=message))
    try:
        outputs = work.result()
    except StepFailure as failure:
        return Outcome(StepStatus.FAILED, failure.outputs, failure.error)
    except Exception as exc:
        return Outcome(StepStatus.FAILED, error=_unexpected(exc))
    return Outcome(StepStatus.SUCCEEDED, outputs)


_MESSAGE_MAX = 4000
"""Characters of an error message kept in StepFinished."""


def _unexpected(exc: Exception) -> StepError:
    return StepError(
        kind="exception", message=f"{type(exc).__name__}: {exc}", exception_type=type(exc).__name__
    )


def cancelled(command: ExecuteStep, worker_id: str, reason: str) -> StepFinished:
    """Return the StepFinished of an attempt cancelled before it ran."""
    return StepFinished(
        **command.caused(producer="executor"),
        order_run_id=command.order_run_id,
        step_run_id=command.step_run_id,
        step=command.step,
        attempt=command.attempt,
        worker_id=worker_id,
        status=StepStatus.CANCELLED,
        error=StepError(kind="cancelled", message=f"cancelled before it started: {reason}"),
    )


async def run_attempt(
    command: ExecuteStep,
    *,
    settings: ExecutorSettings,
    references: References,
    worker_id: str,
    cancel: asyncio.Event,
    cancel_error: Callable[[], StepError],
    reaper: Reaper | None = None,
    warm: WarmPool | None = None,
) -> StepFinished:
    """Run one attempt and return its StepFinished, every secret value masked.

    Once `cancel` is set the attempt is stopped and ends as cancelled with `cancel_error()`.
    """
    began = time.monotonic()
    redactor = Redactor()
    tail = LogTail(LOG_TAIL_MAX, redactor)
    workdir: Path | None = None
    try:
        scope = Scope(command.domain, command.kitchen)
        connections = {
            n: references.resolve(r, scope)
            for n, r in command.connections.items()
            if n in needed_connections(command)
        }
        secrets = {n: references.secret(n, scope) for n in command.secrets}
        redactor.add([*connections.values(), *secrets.values()])
        LOG_REDACTOR.add([*connections.values(), *secrets.values()])
        if command.kind in PROCESS_KINDS:
            root = settings.work_root
            if root is not None:
                root.mkdir(parents=True, exist_ok=True)
            prefix = f"sous-{command.step}-{command.attempt}-"
            workdir = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
        context = StepContext(
            command, connections, secrets, redactor, tail, workdir, settings, reaper, warm
        )
        outcome = await _supervise(context, cancel, cancel_error)
    except StepFailure as failure:  # references and the like, before anything ran
        outcome = Outcome(StepStatus.FAILED, failure.outputs, failure.error)
    except Exception as exc:  # the executor's own trouble (a full disk …) still ends the step
        outcome = Outcome(StepStatus.FAILED, error=_unexpected(exc))
    finally:
        if workdir is not None and not settings.keep_workdirs:
            shutil.rmtree(workdir, ignore_errors=True)
    return _finished(
        command, outcome, redactor, tail, worker_id, time.monotonic() - began, settings
    )


def _finished(
    command: ExecuteStep,
    outcome: Outcome,
    redactor: Redactor,
    tail: LogTail,
    worker_id: str,
    duration_s: float,
    settings: ExecutorSettings,
) -> StepFinished:
    """Build the redacted StepFinished; outputs too large for one message fail the step."""
    error = outcome.error
    if error is not None:
        message = redactor.text(error.message)
        if len(message) > _MESSAGE_MAX:
            message = message[: _MESSAGE_MAX - 1] + "…"
        error = error.model_copy(update={"message": message})
    finished = StepFinished(
        **command.caused(producer="executor"),
        order_run_id=command.order_run_id,
        step_run_id=command.step_run_id,
        step=command.step,
        attempt=command.attempt,
        worker_id=worker_id,
        status=outcome.status,
        outputs=Outputs.model_validate(redactor.data(outcome.outputs.model_dump(mode="json"))),
        log_tail=tail.text(),
        error=error,
        duration_s=duration_s,
    )
    size = len(finished.to_json())
    if size <= settings.max_event_bytes:
        return finished
    # An oversized event would be refused by the broker and stall the outbox behind it.
    too_big = StepError(
        kind="spec",
        message=f"outputs too large: StepFinished would be {size} bytes, "
        f"limit {settings.max_event_bytes}; publish datasets, not data",
    )
    return finished.model_copy(
        update={"status": StepStatus.FAILED, "outputs": Outputs(), "error": too_big}
    )
