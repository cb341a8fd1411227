"""Child processes of shell and python steps: own process group, output tail, sure kill."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from sous_executor.adapters.context import StepContext
from sous_executor.domain.outcome import SpecError

_PR_SET_PDEATHSIG = 1


def _find_prctl() -> Any:
    # Looked up once in the parent: loading a library between fork and exec is unsafe.
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


PRCTL = _find_prctl()


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask the kernel to SIGKILL this process when the process that started it dies."""
    # If the executor is SIGKILLed, the kernel sends the direct child SIGKILL too; the
    # reaper helper takes care of the rest of the group.
    PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _pump(stream: asyncio.StreamReader, context: StepContext) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # chars split by reads
    while chunk := await stream.read(65_536):
        context.tail.write(decoder.decode(chunk))
    context.tail.write(decoder.decode(b"", final=True))


class Child(Protocol):
    """A started step process: the leader of its own process group."""

    pid: int

    async def wait(self) -> int:
        """Wait for the exit; return the code (negative: the signal that killed it)."""
        ...


async def run_process(
    context: StepContext, argv: Sequence[str], env: Mapping[str, str], cwd: Path
) -> int:
    """Run argv in a new session (its own process group); return the exit code.

    Raises:
        SpecError: the program cannot be started.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            preexec_fn=die_with_parent if PRCTL is not None else None,
        )
    except OSError as exc:
        raise SpecError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from exc
    assert proc.stdout is not None
    return await watch(context, proc, proc.stdout)


async def watch(context: StepContext, child: Child, output: asyncio.StreamReader) -> int:
    """Tail the child's output until it exits; return the exit code.

    stdout and stderr go, combined, to the step's log tail. On cancellation (timeout or
    CancelStep) the whole group gets SIGTERM, then SIGKILL after the grace period, so
    grandchildren die too. When the main process exits, leftovers of its group are killed.
    """
    if context.reaper is not None:
        context.reaper.add(child.pid)
    pump = asyncio.create_task(_pump(output, context))
    try:
        code = await child.wait()
    except asyncio.CancelledError:
        await _terminate(child, context.settings.kill_grace_s)
        pump.cancel()
        raise
    finally:
        # Background grandchildren may hold the pipe open; the step is over, so they go.
        _signal_group(child.pid, signal.SIGKILL)
        if context.reaper is not None:
            context.reaper.discard(child.pid)
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(pump, 1.0)
    return code


async def _terminate(child: Child, grace_s: float) -> None:
    _signal_group(child.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(child.wait()), grace_s)
    _signal_group(child.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(child.wait(), 2.0)
