"""The topic catalog: every topic's name, key, partitions, cleanup policy and message types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sous_contracts.backfills import (
    BackfillRejected,
    BackfillUpdated,
    CancelBackfill,
    RetryBackfill,
    StartBackfill,
)
from sous_contracts.deadletter import DeadLetter
from sous_contracts.envelope import Envelope
from sous_contracts.registry import ApplySpecs, RegistryEntityChanged
from sous_contracts.runs import (
    CancelOrderRun,
    DomainRunCompleted,
    JoinWindowExpired,
    OrderRunDeduplicated,
    OrderRunFinished,
    OrderRunQueued,
    OrderRunRejected,
    OrderRunStarted,
    StartOrderRun,
    TriggerHeld,
)
from sous_contracts.steps import (
    CancelStep,
    ExecuteStep,
    StepEventsMark,
    StepFinished,
    StepHeartbeat,
    StepSkipped,
    StepStarted,
)
from sous_contracts.tests import RunTests, TestResult, TestSuiteFinished


@dataclass(frozen=True)
class Topic:
    """One entry of the catalog; `name` is without the deployment prefix."""

    name: str
    key: str
    partitions: int
    cleanup: Literal["delete", "compact"]
    messages: tuple[type[Envelope], ...]
    description: str
    retention_ms: int | None = None
    """How long the broker keeps a record (`retention.ms`); on a compacted topic, only
    superseded records are removed, so this stays None there."""
    delete_retention_ms: int | None = None
    """How long a compacted topic keeps a tombstone (`delete.retention.ms`): a reader away
    longer than this misses the deletion."""

    def full_name(self, prefix: str = "") -> str:
        """Return the topic name with the deployment prefix (e.g. `staging.`)."""
        return f"{prefix}{self.name}"

    def message_types(self) -> tuple[str, ...]:
        """Return the `type` strings this topic may carry."""
        return tuple(str(m.model_fields["type"].default) for m in self.messages)

    def config(self) -> dict[str, str]:
        """Return the broker-side topic configuration."""
        cfg: dict[str, str] = {"cleanup.policy": self.cleanup}
        if self.retention_ms is not None:
            cfg["retention.ms"] = str(self.retention_ms)
        if self.delete_retention_ms is not None:
            cfg["delete.retention.ms"] = str(self.delete_retention_ms)
        return cfg


_WEEK_MS = 7 * 24 * 3600 * 1000
# Commands and step/test/run events matter while a run lives: a week outlasts any run and any
# outage of a consumer group. Completions and dead letters are read later (trigger replays,
# an operator's investigation): four weeks. Each service's inbox and the scheduler's firings
# must outlive these (`SOUS_RETENTION_INBOX_DAYS`, `SOUS_RETENTION_FIRINGS_DAYS`).

ORDER_RUN_COMMANDS = Topic(
    "sous.commands.order-run",
    "order_run_id",
    6,
    "delete",
    (StartOrderRun, CancelOrderRun, StartBackfill, CancelBackfill, RetryBackfill),
    "Start or cancel order runs and backfills; produced by the CLI, the REST API and other"
    " systems.",
    retention_ms=_WEEK_MS,
)
STEP_COMMANDS = Topic(
    "sous.commands.step",
    "order_run_id",
    6,
    "delete",
    (ExecuteStep, CancelStep),
    "Steps for executors to run or stop.",
    retention_ms=_WEEK_MS,
)
TEST_COMMANDS = Topic(
    "sous.commands.test",
    "order_run_id",
    6,
    "delete",
    (RunTests,),
    "Test suites for test-runners to run.",
    retention_ms=_WEEK_MS,
)
RUN_EVENTS = Topic(
    "sous.events.run",
    "order_run_id",
    6,
    "delete",
    (
        OrderRunRejected,
        OrderRunQueued,
        OrderRunStarted,
        OrderRunFinished,
        BackfillUpdated,
        BackfillRejected,
        OrderRunDeduplicated,
        JoinWindowExpired,
        TriggerHeld,
    ),
    "Life of every order run and backfill, repeated keys answered, keyed join windows that"
    " expired, and triggers held until monitors pass.",
    retention_ms=_WEEK_MS,
)
STEP_EVENTS = Topic(
    "sous.events.step",
    "order_run_id",
    6,
    "delete",
    (StepStarted, StepHeartbeat, StepFinished, StepEventsMark, StepSkipped),
    "Step attempts as executors run them, the steps the scheduler skipped, and its read marks.",
    retention_ms=_WEEK_MS,
)
TEST_RESULTS = Topic(
    "sous.events.test-result",
    "order_run_id",
    6,
    "delete",
    (TestResult, TestSuiteFinished),
    "One result per test and one summary per suite; ops consoles subscribe here.",
    retention_ms=_WEEK_MS,
)
DOMAIN_EVENTS = Topic(
    "sous.events.domain",
    "domain",
    6,
    "delete",
    (DomainRunCompleted,),
    "Completion events of domains (from Sous or other tools); they trigger downstream recipes.",
    retention_ms=4 * _WEEK_MS,
)
REGISTRY_COMMANDS = Topic(
    "sous.registry.commands",
    "bundle_id",
    3,
    "delete",
    (ApplySpecs,),
    "Spec bundles to apply.",
    retention_ms=_WEEK_MS,
)
REGISTRY_CHANGELOG = Topic(
    "sous.registry.changelog",
    "entity_id",
    3,
    "compact",
    (RegistryEntityChanged,),
    "Current version of every registry entity; compacted, so it rebuilds a full view.",
    delete_retention_ms=_WEEK_MS,
)
DEAD_LETTERS = Topic(
    "sous.dlq",
    "source_topic",
    3,
    "delete",
    (DeadLetter,),
    "Messages a consumer could not accept, with the reason and their source coordinates.",
    retention_ms=4 * _WEEK_MS,
)

LINEAGE = Topic(
    "sous.lineage",
    "order_run_id",
    6,
    "delete",
    (),
    "OpenLineage RunEvents (JSON, spec 2-0-2) of order runs and their steps, as the scheduler"
    " emits them with `SOUS_OPENLINEAGE_TRANSPORT=kafka`; keyed by the order run, so a run's"
    " events stay in order. Not Sous envelopes: any OpenLineage consumer reads them.",
    retention_ms=4 * _WEEK_MS,
)

CATALOG: tuple[Topic, ...] = (
    ORDER_RUN_COMMANDS,
    STEP_COMMANDS,
    TEST_COMMANDS,
    RUN_EVENTS,
    STEP_EVENTS,
    TEST_RESULTS,
    DOMAIN_EVENTS,
    REGISTRY_COMMANDS,
    REGISTRY_CHANGELOG,
    DEAD_LETTERS,
    LINEAGE,
)


def topic_for(message: type[Envelope] | Envelope) -> Topic:
    """Return the one catalog topic that carries this message type."""
    cls = message if isinstance(message, type) else type(message)
    for topic in CATALOG:
        if cls in topic.messages:
            return topic
    raise LookupError(f"no topic in the catalog carries {cls.__name__}")
