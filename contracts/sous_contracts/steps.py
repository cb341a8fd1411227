"""Step commands (scheduler → executor) and step events (executor → scheduler)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AwareDatetime, Field

from sous_contracts.common import LOG_TAIL_MAX, Name, Outputs, Params, StepStatus
from sous_contracts.envelope import Contract, Envelope


class StepRunRef(Contract):
    """Identifies one attempt of one step of one run."""

    order_run_id: uuid.UUID
    """The run."""
    step_run_id: uuid.UUID
    """The step within the run (stable across attempts)."""
    step: Name
    """Step name in the recipe."""
    attempt: int = Field(default=1, ge=1)
    """Attempt number, from 1."""


class ExecuteStep(Envelope):
    """Command: run one attempt of a step."""

    type: Literal["ExecuteStep"] = "ExecuteStep"
    order_run_id: uuid.UUID
    """The run."""
    step_run_id: uuid.UUID
    """The step within the run."""
    step: Name
    """Step name."""
    attempt: int = Field(default=1, ge=1)
    """Attempt number, from 1."""
    domain: Name
    """Owning domain."""
    kitchen: Name
    """Kitchen the run is in."""
    variation: Name | None = None
    """Variation of the run."""
    kind: Literal["shell", "python", "sql", "http", "noop"]
    """Step kind; nested recipes never reach the executor."""
    spec: dict[str, Any] = Field(default_factory=dict)
    """The kind's settings (argv, module:function, SQL, URL …) with params resolved."""
    params: Params = Field(default_factory=dict)
    """Resolved parameters, passed to the step (as environment for shell and python)."""
    connections: dict[str, str] = Field(default_factory=dict)
    """Connection name → reference (`secret:NAME`), never the value itself; resolved in the
    secret store of this domain and kitchen only."""
    secrets: list[str] = Field(default_factory=list)
    """Secret names the step may read (from this domain's and kitchen's store); their values
    are redacted everywhere."""
    timeout_s: float = Field(default=3600.0, gt=0)
    """Seconds the attempt may take before it is killed."""
    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    """How often the executor must send StepHeartbeat."""
    deadline: AwareDatetime | None = None
    """Do not start after this instant (the scheduler will have re-dispatched)."""


class CancelStep(Envelope):
    """Command: stop a running step attempt now."""

    type: Literal["CancelStep"] = "CancelStep"
    order_run_id: uuid.UUID
    """The run."""
    step_run_id: uuid.UUID
    """The step."""
    attempt: int | None = None
    """Attempt to stop; None stops any."""
    reason: str = "cancelled"
    """Why."""


class StepStarted(Envelope):
    """Event: an executor took a step attempt and started it."""

    type: Literal["StepStarted"] = "StepStarted"
    order_run_id: uuid.UUID
    """The run."""
    step_run_id: uuid.UUID
    """The step."""
    step: Name
    """Step name."""
    attempt: int = Field(ge=1)
    """Attempt number."""
    worker_id: str
    """Executor replica running it; its lease is kept alive by heartbeats."""


class StepHeartbeat(Envelope):
    """Event: the attempt is still running (renews the executor's lease)."""

    type: Literal["StepHeartbeat"] = "StepHeartbeat"
    order_run_id: uuid.UUID
    """The run."""
    step_run_id: uuid.UUID
    """The step."""
    attempt: int = Field(ge=1)
    """Attempt number."""
    worker_id: str
    """Executor replica."""


class StepEventsMark(Envelope):
    """Event: the scheduler's mark on one partition of the step events (DESIGN §5.10).

    A reader that has handled it has read that partition through `occurred_at`: every
    heartbeat sent before then is behind it. A lease expires only once every partition is
    read past its deadline, so an outage of Kafka or of the scheduler's database never
    expires the lease of an executor that kept sending heartbeats. Other readers ignore it.
    """

    KEY_FIELD: ClassVar[str] = "partition"
    PLACED: ClassVar[bool] = True

    type: Literal["StepEventsMark"] = "StepEventsMark"
    partition: int = Field(ge=0)
    """The partition it was written to."""


class StepError(Contract):
    """Why an attempt failed, in words a person can act on."""

    kind: Literal[
        "exit_code",
        "signal",
        "timeout",
        "exception",
        "http_status",
        "sql",
        "cancelled",
        "spec",
        "shutdown",
    ]
    """Category of failure. `shutdown`: the executor replica stopped before the attempt ended
    (the step itself did not fail), so the scheduler dispatches a new attempt at once, as if
    the attempt's lease had expired."""
    message: str
    """What happened."""
    exit_code: int | None = None
    """Process exit code (shell, python)."""
    signal: int | None = None
    """Signal that ended the process."""
    http_status: int | None = None
    """HTTP status received."""
    sql_position: int | None = None
    """Character position of an SQL error."""
    exception_type: str | None = None
    """Exception class name."""


class StepFinished(Envelope):
    """Event: an attempt ended."""

    type: Literal["StepFinished"] = "StepFinished"
    order_run_id: uuid.UUID
    """The run."""
    step_run_id: uuid.UUID
    """The step."""
    step: Name
    """Step name."""
    attempt: int = Field(ge=1)
    """Attempt number."""
    worker_id: str
    """Executor replica."""
    status: StepStatus
    """How it ended."""
    outputs: Outputs = Field(default_factory=Outputs)
    """Outputs the step published."""
    log_tail: Annotated[str, Field(max_length=LOG_TAIL_MAX)] = ""
    """The end of the step's log, secrets redacted."""
    error: StepError | None = None
    """Set when the status is not `succeeded`."""
    duration_s: float = Field(default=0.0, ge=0)
    """Wall time of the attempt."""


class StepSkipped(Envelope):
    """Event (from the scheduler): a step did not run, and why.

    Its `when:` condition was false, or a step it needs was skipped. A skipped step does not
    fail its run.
    """

    type: Literal["StepSkipped"] = "StepSkipped"
    order_run_id: uuid.UUID
    """The run."""
    step_run_id: uuid.UUID
    """The step."""
    step: Name
    """Step name."""
    reason: str
    """Why, in words: the condition and what it saw, or which needed step was skipped."""
    when: str | None = None
    """The condition that was false (None when skipped because a needed step was)."""
    seen: Params = Field(default_factory=dict)
    """Dotted name → value of every name the condition read, as it read them."""
