"""The run state: one frozen, serialisable record per order run."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sous_contracts.common import Outputs, TestSummary
from sous_contracts.runs import RunCause


class RunPhase(StrEnum):
    """Life of an order run: queued → running → succeeded | failed | cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """True once the run has ended."""
        return self in (RunPhase.SUCCEEDED, RunPhase.FAILED, RunPhase.CANCELLED)


class StepPhase(StrEnum):
    """Life of a step: pending → dispatched → running → testing → an end, with retry waits."""

    PENDING = "pending"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    TESTING = "testing"
    RETRY_WAIT = "retry_wait"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    LOST = "lost"

    @property
    def final(self) -> bool:
        """True once the step has ended."""
        return self in _FINAL_STEPS

    @property
    def active(self) -> bool:
        """True while work for the step is out (executor, test-runner or a child run)."""
        return self in (StepPhase.DISPATCHED, StepPhase.RUNNING, StepPhase.TESTING)


_FINAL_STEPS = frozenset(
    {StepPhase.SUCCEEDED, StepPhase.FAILED, StepPhase.SKIPPED, StepPhase.CANCELLED, StepPhase.LOST}
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StepState(_Frozen):
    """Where one step of a run stands."""

    name: str
    step_run_id: uuid.UUID
    phase: StepPhase = StepPhase.PENDING
    attempt: int = 0
    """Attempts dispatched so far (0 before the first)."""
    unstarted: int = 0
    """Attempts no executor took before their dispatch deadline; they use up no retry."""
    worker_id: str | None = None
    reason: str | None = None
    outputs: Outputs = Field(default_factory=Outputs)
    tests: TestSummary = Field(default_factory=TestSummary)
    suite_id: uuid.UUID | None = None
    child_run_id: uuid.UUID | None = None
    reads: list[str] = Field(default_factory=list)
    """Datasets the step reads: its declared `inputs`, params resolved at dispatch."""
    writes: list[str] = Field(default_factory=list)
    """Datasets the step writes: its declared `outputs`, params resolved at dispatch."""
    test_results: dict[str, str] = Field(default_factory=dict)
    """Outcome of each of its tests by name, from the last suite."""
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def written(self) -> list[str]:
        """Datasets it wrote: declared, then the ones it reported in its outputs."""
        reported = [d.uri for d in self.outputs.datasets if d.uri not in self.writes]
        return [*self.writes, *dict.fromkeys(reported)]

    @property
    def tries(self) -> int:
        """Attempts that started (or may have): the ones retries count."""
        return self.attempt - self.unstarted


class RunState(_Frozen):
    """Everything the scheduler knows about one order run."""

    order_run_id: uuid.UUID
    domain: str
    recipe: str
    variation: str
    kitchen: str
    phase: RunPhase = RunPhase.QUEUED
    params: dict[str, Any] = Field(default_factory=dict)
    connections: dict[str, str] = Field(default_factory=dict)
    """Connection name → reference, after kitchen overrides."""
    spec_version: str | None = None
    steps: dict[str, StepState] = Field(default_factory=dict)
    correlation_id: uuid.UUID | None = None
    parent_order_run_id: uuid.UUID | None = None
    parent_step: str | None = None
    parent_recipe: str | None = None
    """`domain/recipe` of the parent run (nested runs), for the lineage parent facet."""
    parent_step_run_id: uuid.UUID | None = None
    """The parent's step run this run settles (nested runs)."""
    root_order_run_id: uuid.UUID | None = None
    """The top-level run of the nesting chain; None for a top-level run itself."""
    root_recipe: str | None = None
    """`domain/recipe` of that top-level run."""
    causation_depth: int = 0
    trigger_event: dict[str, Any] = Field(default_factory=dict)
    """The completion event that triggered the run (`event` in step conditions)."""
    backfill_id: uuid.UUID | None = None
    """The backfill this run is a partition of, if any."""
    fire_triggers: bool = True
    """False keeps the run's completion from firing downstream triggers."""
    cause: RunCause | None = None
    """Why the run started (None for runs stored before run lineage)."""
    trace: dict[str, str] = Field(default_factory=dict)
    """W3C trace context of the run's start, continued by what its timers wake (retries,
    timeouts); empty when tracing is off."""
    reason: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def load(cls, stored: str | bytes) -> RunState:
        """Read a stored state, ignoring fields this version does not know.

        In a rolling upgrade an older replica reads states a newer one saved with new fields;
        building a state in code still refuses unknown fields, and contracts on Kafka keep
        their own rules.
        """
        return cls.model_validate_json(stored, extra="ignore")

    def step(self, name: str) -> StepState:
        """Return one step's state."""
        return self.steps[name]

    def with_step(self, step: StepState, **changes: Any) -> RunState:
        """Return a copy with one step replaced (and run fields changed)."""
        return self.model_copy(update={"steps": {**self.steps, step.name: step}, **changes})

    def find_step(self, step_run_id: uuid.UUID) -> StepState | None:
        """Return the step with this id, if any."""
        return next((s for s in self.steps.values() if s.step_run_id == step_run_id), None)

    def tests_total(self) -> TestSummary:
        """Sum of every step's test counts."""
        fields = TestSummary.model_fields
        return TestSummary(
            **{f: sum(getattr(s.tests, f) for s in self.steps.values()) for f in fields}
        )
