"""Order-run commands and events, and the domain completion event."""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from sous_contracts.common import Name, Outputs, Params, RunStatus, TestSummary
from sous_contracts.envelope import Contract, Envelope

CauseKind = Literal["command", "schedule", "trigger", "nested", "backfill"]
"""Why a run started: a command (CLI, REST, a client on Kafka), a cron schedule, a trigger
on upstream completions, a parent run's nested step, or a backfill."""

IDEMPOTENCY_KEY_MAX = 256
"""Longest `idempotency_key` a run may carry, in characters. The key is indexed with the
run's domain, recipe and kitchen (names of at most 63 characters), and a PostgreSQL b-tree
entry holds at most about 2,700 bytes: 256 characters of up to 4 bytes each stay well inside.
The schema cannot say so within major version 2 (a tightened bound is a breaking change), so
every edge that takes the command enforces it: the REST API (422), the CLI, and the
scheduler, which answers a longer key with OrderRunRejected naming the field."""

TRIGGER_KEY_MAX = IDEMPOTENCY_KEY_MAX
"""Longest partition key a keyed trigger may resolve from an upstream event (`key:
"${event.params.day}"`), in characters. The key is a completion's own text, from any domain
system, and the scheduler indexes it with the trigger id and kitchen (its join windows), so the
same 256 as `IDEMPOTENCY_KEY_MAX` applies for the same reason: with a trigger id of three names
and a kitchen name it stays well inside a b-tree entry. It is also copied into the run's trigger
context and params and into JoinWindowExpired. The scheduler refuses a longer key for that
trigger alone (recorded as the firing's outcome, a warning logged); the event is not a dead
letter and the other triggers it matches fire as usual."""

CANCEL_REASON_MAX = 500
"""Longest `CancelOrderRun.reason`, in characters: it is copied into the run's end event and
its children's, which must stay far below the broker's message size. Enforced like
`IDEMPOTENCY_KEY_MAX` (REST 422, CLI, scheduler OrderRunRejected)."""


class RunCause(Contract):
    """Why a run started, as the scheduler knew it when it started the run."""

    kind: CauseKind
    """What started it."""
    principal: str | None = None
    """The verified principal of the command (kind `command`)."""
    schedule_id: str | None = None
    """The schedule that fired (kind `schedule`)."""
    fire_time: AwareDatetime | None = None
    """The fire time of the schedule (kind `schedule`)."""
    trigger: str | None = None
    """The trigger that fired, `domain/recipe#name` (kind `trigger`)."""
    upstream_order_run_ids: list[uuid.UUID] = Field(default_factory=list)
    """The upstream runs whose completions fired the trigger (every arrival of a join)."""
    upstream_message_ids: list[uuid.UUID] = Field(default_factory=list)
    """The completion events that fired the trigger (an external one may name no run)."""
    parent_order_run_id: uuid.UUID | None = None
    """The parent run (kind `nested`)."""
    parent_step: Name | None = None
    """The parent's step this run settles (kind `nested`)."""

    @property
    def upstream(self) -> list[tuple[uuid.UUID, str, str | None]]:
        """The runs this run came from: (run, `trigger` or `nested`, trigger or parent step)."""
        if self.kind == "nested" and self.parent_order_run_id is not None:
            return [(self.parent_order_run_id, "nested", self.parent_step)]
        return [(run, "trigger", self.trigger) for run in self.upstream_order_run_ids]


class StartOrderRun(Envelope):
    """Command: run one variation of a recipe."""

    type: Literal["StartOrderRun"] = "StartOrderRun"
    order_run_id: uuid.UUID
    """Id the new run will have; chosen by the caller so it can follow the run."""
    domain: Name
    """Domain that owns the recipe."""
    recipe: Name
    """Recipe to run."""
    variation: Name | None = None
    """Variation to run; None runs the recipe's default variation in `kitchen`."""
    kitchen: Name | None = None
    """Kitchen to run in; None takes the variation's kitchen."""
    params: Params = Field(default_factory=dict)
    """Parameter overrides (they win over recipe, kitchen and variation values)."""
    idempotency_key: str | None = None
    """At most one run per key in (domain, recipe, kitchen); a repeat is answered with
    OrderRunDeduplicated naming the existing run. At most 256 characters
    (`IDEMPOTENCY_KEY_MAX`): a longer key is refused with OrderRunRejected."""
    principal: str | None = None
    """Who asks; checked against the grants of the domain."""
    parent_order_run_id: uuid.UUID | None = None
    """Set when this run is a nested recipe step of another run."""
    parent_step: Name | None = None
    """The parent's step this run settles."""
    parent_recipe: str | None = None
    """`domain/recipe` of the parent run (nested runs); names the parent job in lineage."""
    parent_step_run_id: uuid.UUID | None = None
    """The parent's step run this run settles (nested runs); the parent run in lineage."""
    root_order_run_id: uuid.UUID | None = None
    """The top-level run of the nesting chain (nested runs); the root run in lineage."""
    root_recipe: str | None = None
    """`domain/recipe` of the top-level run of the nesting chain (nested runs)."""
    causation_depth: int = Field(default=0, ge=0)
    """How many trigger hops led here; bounded to stop loops."""
    trigger_event: Params = Field(default_factory=dict)
    """The completion event that triggered this run (domain, recipe, variation, kitchen,
    status, params, outputs, order_run_id); empty when no trigger started it. Step
    conditions read it as `event`."""
    backfill_id: uuid.UUID | None = None
    """The backfill this run is a partition of, if any."""
    fire_triggers: bool = True
    """False keeps the run's completion from firing downstream triggers (a backfill's runs)."""


class CancelOrderRun(Envelope):
    """Command: cancel a run, its running steps and its child runs."""

    type: Literal["CancelOrderRun"] = "CancelOrderRun"
    order_run_id: uuid.UUID
    """Run to cancel."""
    reason: str = "cancelled by request"
    """Why, shown to people. At most 500 characters (`CANCEL_REASON_MAX`): a longer reason
    is refused with OrderRunRejected."""
    principal: str | None = None
    """Who asks."""


class OrderRunRejected(Envelope):
    """Event: a StartOrderRun or CancelOrderRun could not be accepted."""

    type: Literal["OrderRunRejected"] = "OrderRunRejected"
    order_run_id: uuid.UUID
    """Id the command named."""
    reason: str
    """What is wrong, in words a person can act on."""
    domain: str | None = None
    """Domain the command named."""
    recipe: str | None = None
    """Recipe the command named."""
    parent_order_run_id: uuid.UUID | None = None
    """Parent run, when the refused run was to be its nested child."""


class OrderRunQueued(Envelope):
    """Event: a run was accepted and waits for a concurrency slot."""

    type: Literal["OrderRunQueued"] = "OrderRunQueued"
    order_run_id: uuid.UUID
    """The run."""
    domain: Name
    """Owning domain."""
    recipe: Name
    """Recipe."""
    variation: Name
    """Variation."""
    kitchen: Name
    """Kitchen."""
    position: int | None = None
    """Place in the queue, when known."""


class OrderRunStarted(Envelope):
    """Event: a run started dispatching steps."""

    type: Literal["OrderRunStarted"] = "OrderRunStarted"
    order_run_id: uuid.UUID
    """The run."""
    domain: Name
    """Owning domain."""
    recipe: Name
    """Recipe."""
    variation: Name
    """Variation."""
    kitchen: Name
    """Kitchen."""
    params: Params = Field(default_factory=dict)
    """Resolved parameters."""
    spec_version: str | None = None
    """Content hash of the recipe spec the run uses."""
    parent_order_run_id: uuid.UUID | None = None
    """Parent run when nested."""
    backfill_id: uuid.UUID | None = None
    """The backfill this run is a partition of, if any."""
    cause: RunCause | None = None
    """Why the run started; absent from producers older than run lineage."""


class StepDatasets(Contract):
    """The datasets one step of a run read and wrote, with how the step ended."""

    step: Name
    """Step name."""
    status: str
    """How the step ended (`succeeded`, `failed`, `skipped`, `cancelled`, `lost`)."""
    inputs: list[str] = Field(default_factory=list)
    """Datasets it read (declared `inputs`, params resolved)."""
    outputs: list[str] = Field(default_factory=list)
    """Datasets it wrote (declared `outputs`, params resolved, plus the ones it reported)."""
    tests: TestSummary = Field(default_factory=TestSummary)
    """Its test counts: the latest health of what it wrote."""


class OrderRunFinished(Envelope):
    """Event: a run ended."""

    type: Literal["OrderRunFinished"] = "OrderRunFinished"
    order_run_id: uuid.UUID
    """The run."""
    domain: Name
    """Owning domain."""
    recipe: Name
    """Recipe."""
    variation: Name
    """Variation."""
    kitchen: Name
    """Kitchen."""
    status: RunStatus
    """How it ended."""
    reason: str | None = None
    """Why it failed or was cancelled."""
    started_at: AwareDatetime | None = None
    """When the first step was dispatched."""
    outputs: Outputs = Field(default_factory=Outputs)
    """Outputs of the run's final steps."""
    tests: TestSummary = Field(default_factory=TestSummary)
    """Test counts over the whole run."""
    parent_order_run_id: uuid.UUID | None = None
    """Parent run when nested."""
    datasets: list[StepDatasets] = Field(default_factory=list)
    """Datasets per step that declared or reported any (dataset lineage)."""
    backfill_id: uuid.UUID | None = None
    """The backfill this run is a partition of, if any."""


class DomainRunCompleted(Envelope):
    """Event on the domain topic: a domain finished a run; triggers downstream recipes.

    Sous publishes it for its own runs; a domain run by another tool publishes it too
    (`order_run_id` may then be that tool's run id, or absent).
    """

    KEY_FIELD: ClassVar[str] = "domain"

    type: Literal["DomainRunCompleted"] = "DomainRunCompleted"
    domain: Name
    """Domain that finished."""
    recipe: Name
    """Recipe (or the other tool's job name)."""
    variation: Name | None = None
    """Variation, when run by Sous."""
    kitchen: Name
    """Kitchen the run happened in."""
    status: RunStatus
    """How it ended."""
    order_run_id: uuid.UUID | None = None
    """The run, when known."""
    params: Params = Field(default_factory=dict)
    """Parameters the run used; triggers may pass them on (`${event.params.day}`)."""
    outputs: Outputs = Field(default_factory=Outputs)
    """Outputs the run published (datasets, values)."""
    tests: TestSummary = Field(default_factory=TestSummary)
    """Test counts; triggers can match on them."""
    spec_version: str | None = None
    """Content hash of the recipe spec used."""
    causation_depth: int = Field(default=0, ge=0)
    """Trigger hops that led to this run."""
    external: bool = False
    """True when another tool ran the domain and published this event."""
    backfill_id: uuid.UUID | None = None
    """The backfill this run is a partition of, if any."""
    fire_triggers: bool = True
    """False tells trigger consumers not to fire on this event (a backfill without
    `downstream`); the event is still published for every other reader."""


class OrderRunDeduplicated(Envelope):
    """Event: a StartOrderRun repeated an idempotency key; it is answered with the existing run.

    Keys are scoped to (domain, recipe, kitchen). Keyed by the id the command asked for, so a
    client following that id learns which run to follow instead.
    """

    type: Literal["OrderRunDeduplicated"] = "OrderRunDeduplicated"
    order_run_id: uuid.UUID
    """Id the repeated command asked for; no run has it."""
    existing_order_run_id: uuid.UUID
    """The run started by the first command with this key: follow this one."""
    idempotency_key: str
    """The repeated key."""
    command_message_id: uuid.UUID
    """`message_id` of the repeated command."""
    domain: Name
    """Domain of the run."""
    recipe: Name
    """Recipe of the run."""
    kitchen: Name
    """Kitchen the key is scoped to."""
    status: RunStatus | None = None
    """How the existing run ended, when it has; None while it is queued or running."""


class JoinArrival(Contract):
    """One upstream of a join: whether its completion arrived inside the window."""

    domain: Name
    """Upstream domain the trigger names."""
    recipe: Name | None = None
    """Upstream recipe the trigger names (None: any of the domain)."""
    arrived: bool = False
    """True when a matching completion arrived for this key inside the window."""
    order_run_id: uuid.UUID | None = None
    """The upstream run that arrived, when known."""
    message_id: uuid.UUID | None = None
    """The completion event that arrived."""


class JoinWindowExpired(Envelope):
    """Event: a keyed join's window ended before enough upstreams arrived; nothing started."""

    type: Literal["JoinWindowExpired"] = "JoinWindowExpired"
    order_run_id: uuid.UUID
    """Id the join's run would have had; no run has it. Read models list the expiry under it."""
    trigger_id: str
    """The trigger: `domain/recipe#name` (or its position)."""
    domain: Name
    """Domain of the recipe the join would have started."""
    recipe: Name
    """Recipe the join would have started."""
    kitchen: Name
    """Kitchen of the upstream completions."""
    key: str
    """The partition key of the window (for example a day)."""
    needed: int = Field(ge=1)
    """How many upstreams had to arrive."""
    upstreams: list[JoinArrival] = Field(default_factory=list)
    """Every upstream of the join, arrived or not."""
    opened_at: AwareDatetime
    """When the first upstream of this key arrived."""
    deadline: AwareDatetime
    """When the window ended."""

    def describe(self) -> str:
        """Say which upstreams arrived (with their runs) and which did not, in one sentence."""

        def name(u: JoinArrival) -> str:
            return f"{u.domain}/{u.recipe or '*'}"

        arrived = [
            f"{name(u)} (run {u.order_run_id})" if u.order_run_id else name(u)
            for u in self.upstreams
            if u.arrived
        ]
        missing = [name(u) for u in self.upstreams if not u.arrived]
        return (
            f"join {self.trigger_id} for key {self.key!r} expired at {self.deadline.isoformat()}"
            f" with {len(arrived)} of {self.needed} needed: arrived {', '.join(arrived) or 'none'};"
            f" missing {', '.join(missing) or 'none'}"
        )


class TriggerHeld(Envelope):
    """Event: a `require: monitors_pass` trigger waits for monitors to pass.

    A monitor of a dataset its upstream wrote has not passed; the trigger fires, with this
    run id, once they pass.
    """

    type: Literal["TriggerHeld"] = "TriggerHeld"
    order_run_id: uuid.UUID
    """Id of the run the trigger starts when released; read models list the hold under it."""
    trigger_id: str
    """The trigger: `domain/recipe#name` (or its position)."""
    domain: Name
    """Domain of the recipe the trigger starts."""
    recipe: Name
    """Recipe the trigger starts."""
    kitchen: Name
    """Kitchen of the upstream completion."""
    upstream_order_run_id: uuid.UUID | None = None
    """The upstream run whose completion is held."""
    datasets: list[str] = Field(default_factory=list)
    """Datasets the upstream wrote, whose monitors must pass."""
    reason: str
    """Which monitor failed (or has no result yet), on which dataset."""
