"""Inputs of decide() that are not contract messages, and its output."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sous_contracts.common import Outputs, RunStatus, TestSummary
from sous_contracts.envelope import Envelope
from sous_scheduler.domain.state import RunState

TimerKind = Literal["lease", "step_timeout", "retry", "test_timeout", "run_timeout"]


@dataclass(frozen=True)
class Begin:
    """Start dispatching a queued run."""


@dataclass(frozen=True)
class TimerFired:
    """A durable timer came due."""

    kind: TimerKind
    step: str | None
    attempt: int


@dataclass(frozen=True)
class ChildFinished:
    """A nested recipe's child run ended (or was refused)."""

    child_run_id: uuid.UUID
    status: RunStatus
    reason: str | None = None
    outputs: Outputs = field(default_factory=Outputs)
    tests: TestSummary = field(default_factory=TestSummary)


@dataclass(frozen=True)
class SetTimer:
    """Create or move the timer (run, kind, step)."""

    kind: TimerKind
    step: str | None
    attempt: int
    due: datetime


@dataclass(frozen=True)
class ClearTimer:
    """Remove the timer (run, kind, step)."""

    kind: TimerKind
    step: str | None


@dataclass(frozen=True)
class Context:
    """What decide() needs from the outside world, passed in so it stays pure."""

    now: datetime
    new_id: Callable[[], uuid.UUID]
    cause_id: uuid.UUID | None = None
    dispatch_lease_s: float = 30.0
    """How long an ExecuteStep may wait for StepStarted before a new attempt."""
    heartbeat_interval_s: float = 5.0
    lease_factor: float = 3.0
    """Missed heartbeats that make a lease expire."""
    test_grace_s: float = 60.0


@dataclass
class Decision:
    """What decide() returns: the new state, messages to emit and timer changes."""

    state: RunState
    messages: list[Envelope] = field(default_factory=list)
    timers: list[SetTimer | ClearTimer] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """True when this decision ended the run."""
        return self.state.phase.final and any(m.type == "OrderRunFinished" for m in self.messages)
