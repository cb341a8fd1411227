"""One fully populated sample of every message type, for golden files, tests and benchmarks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

from sous_contracts.backfills import (
    BackfillCounts,
    BackfillRange,
    BackfillRejected,
    BackfillStatus,
    BackfillUpdated,
    CancelBackfill,
    PartitionState,
    PartitionUpdate,
    RetryBackfill,
    StartBackfill,
)
from sous_contracts.common import (
    DatasetRef,
    Outputs,
    RunStatus,
    Severity,
    StepStatus,
    TestStatus,
    TestSummary,
)
from sous_contracts.deadletter import DeadLetter
from sous_contracts.envelope import Envelope
from sous_contracts.registry import ApplySpecs, EntityKind, RegistryEntityChanged
from sous_contracts.runs import (
    CancelOrderRun,
    DomainRunCompleted,
    JoinArrival,
    JoinWindowExpired,
    OrderRunDeduplicated,
    OrderRunFinished,
    OrderRunQueued,
    OrderRunRejected,
    OrderRunStarted,
    StartOrderRun,
    StepDatasets,
    TriggerHeld,
)
from sous_contracts.steps import (
    CancelStep,
    ExecuteStep,
    StepError,
    StepEventsMark,
    StepFinished,
    StepHeartbeat,
    StepSkipped,
    StepStarted,
)
from sous_contracts.tests import RunTests, TestDefinition, TestResult, TestSuiteFinished

RUN = uuid.UUID("01890a5d-ac96-774b-bcce-b302099a8057")
STEP = uuid.UUID("01890a5d-ac96-774b-bcce-b302099a8058")
SUITE = uuid.UUID("01890a5d-ac96-774b-bcce-b302099a8059")
BACKFILL = uuid.UUID("01890a5d-ac96-774b-bcce-b302099a805a")
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


M = TypeVar("M", bound=Envelope)


def _env(n: int) -> dict[str, object]:
    return {
        "message_id": uuid.UUID(int=(0x01890A5DAC96 << 80) | (7 << 76) | (2 << 62) | n),
        "occurred_at": AT,
        "producer": "sample",
        "correlation_id": RUN,
    }


def sample_messages() -> list[Envelope]:
    """Return one sample of every message type in the catalog, with fixed ids and times."""
    outputs = Outputs(values={"rows": 1200}, datasets=[DatasetRef(uri="pg://wh/sales.orders")])
    summary = TestSummary(passed=3, warnings=1)
    step_ids = {"order_run_id": RUN, "step_run_id": STEP}
    run_ids = {"order_run_id": RUN, "domain": "sales", "recipe": "daily"}
    where = {"variation": "prod", "kitchen": "prod"}
    return [
        StartOrderRun(
            **_env(1),
            **run_ids,
            **where,
            params={"day": "2026-01-01"},
            idempotency_key="sales-daily-2026-01-01",
            principal="cli",
        ),
        CancelOrderRun(**_env(2), order_run_id=RUN, reason="wrong day", principal="alice"),
        OrderRunRejected(**_env(3), **run_ids, reason="unknown variation 'nightly'"),
        OrderRunQueued(**_env(4), **run_ids, **where, position=1),
        OrderRunStarted(
            **_env(5), **run_ids, **where, params={"day": "2026-01-01"}, spec_version="sha256:ab12"
        ),
        OrderRunFinished(
            **_env(6),
            **run_ids,
            **where,
            status=RunStatus.SUCCEEDED,
            started_at=AT,
            outputs=outputs,
            tests=summary,
            datasets=[
                StepDatasets(
                    step="load",
                    status="succeeded",
                    inputs=["sales.raw_orders"],
                    outputs=["sales.orders_daily"],
                    tests=summary,
                )
            ],
        ),
        DomainRunCompleted(
            **_env(7),
            **run_ids,
            **where,
            status=RunStatus.SUCCEEDED,
            params={"day": "2026-01-01"},
            outputs=outputs,
            tests=summary,
            spec_version="sha256:ab12",
        ),
        ExecuteStep(
            **_env(8),
            **step_ids,
            step="load",
            attempt=1,
            domain="sales",
            kitchen="prod",
            variation="prod",
            kind="shell",
            spec={"argv": ["python", "load.py"]},
            params={"day": "2026-01-01"},
            connections={"warehouse": "secret:warehouse"},
            timeout_s=600,
        ),
        CancelStep(**_env(9), **step_ids, attempt=1, reason="run cancelled"),
        StepStarted(**_env(10), **step_ids, step="load", attempt=1, worker_id="executor-1"),
        StepHeartbeat(**_env(11), **step_ids, attempt=1, worker_id="executor-1"),
        StepFinished(
            **_env(12),
            **step_ids,
            step="load",
            attempt=1,
            worker_id="executor-1",
            status=StepStatus.FAILED,
            log_tail="loading…\nboom",
            error=StepError(kind="exit_code", message="exited with 2", exit_code=2),
            duration_s=1.5,
        ),
        RunTests(
            **_env(13),
            **step_ids,
            step="load",
            suite_id=SUITE,
            domain="sales",
            recipe="daily",
            **where,
            outputs=outputs,
            tests=[
                TestDefinition(
                    name="rows", kind="metric", check={"output": "rows", "op": ">", "value": 0}
                )
            ],
        ),
        TestResult(
            **_env(14),
            **step_ids,
            suite_id=SUITE,
            step="load",
            test="rows",
            kind="metric",
            severity=Severity.ERROR,
            status=TestStatus.PASSED,
            domain="sales",
            recipe="daily",
            **where,
            value=1200,
            threshold=0,
            message="rows 1200 > 0",
            duration_s=0.01,
        ),
        TestSuiteFinished(
            **_env(15),
            **step_ids,
            suite_id=SUITE,
            step="load",
            summary=summary,
            blocking=False,
            results={"rows": TestStatus.PASSED, "fresh": TestStatus.WARNING},
        ),
        ApplySpecs(
            **_env(16), bundle_id="b-1", files={"domain.yaml": "domain: sales\n"}, principal="alice"
        ),
        RegistryEntityChanged(
            **_env(17),
            entity_id="recipe:sales/daily",
            kind=EntityKind.RECIPE,
            domain="sales",
            name="daily",
            version="sha256:ab12",
            spec={"recipe": "daily"},
            changed_by="alice",
        ),
        DeadLetter(
            **_env(18),
            reason="missing field 'order_run_id'",
            error_kind="invalid",
            source_topic="sous.events.step",
            source_partition=2,
            source_offset=41,
            consumer="sous-scheduler",
            key=str(RUN),
            payload='{"type":"StepFinished"}',
            payload_size=23,
        ),
        StepEventsMark(**_env(19), partition=3),
        StepSkipped(
            **_env(20),
            order_run_id=RUN,
            step_run_id=STEP,
            step="publish",
            reason="when 'steps.load.outputs.rows > 0' was false (steps.load.outputs.rows = 0)",
            when="steps.load.outputs.rows > 0",
            seen={"steps.load.outputs.rows": 0},
        ),
        StartBackfill(
            **_env(21),
            backfill_id=BACKFILL,
            domain="sales",
            recipe="daily",
            variation="prod",
            params={"region": "eu"},
            range=BackfillRange(param="day", start="2026-11-01", end="2026-11-07", step="1d"),
            concurrency=3,
            principal="alice",
        ),
        CancelBackfill(**_env(22), backfill_id=BACKFILL, reason="wrong range", principal="alice"),
        RetryBackfill(**_env(23), backfill_id=BACKFILL, principal="alice"),
        BackfillUpdated(
            **_env(24),
            backfill_id=BACKFILL,
            domain="sales",
            recipe="daily",
            variation="prod",
            kitchen="prod",
            range=BackfillRange(param="day", start="2026-11-01", end="2026-11-07", step="1d"),
            concurrency=3,
            status=BackfillStatus.RUNNING,
            counts=BackfillCounts(total=7, done=3, failed=1, running=3),
            partitions=[
                PartitionUpdate(
                    key="2026-11-04",
                    state=PartitionState.FAILED,
                    order_run_id=RUN,
                    attempt=1,
                    reason="step load failed",
                )
            ],
            principal="alice",
        ),
        BackfillRejected(
            **_env(25),
            backfill_id=BACKFILL,
            command="StartBackfill",
            reason="unknown recipe sales/daily",
            domain="sales",
            recipe="daily",
        ),
        OrderRunDeduplicated(
            **_env(26),
            order_run_id=STEP,
            existing_order_run_id=RUN,
            idempotency_key="sales-daily-2026-01-01",
            command_message_id=_env(1)["message_id"],
            domain="sales",
            recipe="daily",
            kitchen="prod",
            status=RunStatus.SUCCEEDED,
        ),
        JoinWindowExpired(
            **_env(27),
            order_run_id=SUITE,
            trigger_id="finance/revenue#by-day",
            domain="finance",
            recipe="revenue",
            kitchen="prod",
            key="2026-01-01",
            needed=2,
            upstreams=[
                JoinArrival(domain="sales", recipe="daily", arrived=True, order_run_id=RUN),
                JoinArrival(domain="payments", recipe="settle"),
            ],
            opened_at=AT,
            deadline=AT,
        ),
        TriggerHeld(
            **_env(28),
            order_run_id=SUITE,
            trigger_id="marketing/dashboard#0",
            domain="marketing",
            recipe="dashboard",
            kitchen="prod",
            upstream_order_run_id=RUN,
            datasets=["finance.revenue"],
            reason="monitor finance/revenue on finance.revenue failed (one_row_per_day)",
        ),
    ]


def sample_of(kind: type[M], **changes: Any) -> M:
    """Return the sample of message type `kind` as a new message, `changes` applied.

    The copy has a fresh `message_id` (consumers deduplicate on it) and is validated.
    """
    found = next(m for m in sample_messages() if isinstance(m, kind))
    return kind.model_validate({**found.model_dump(exclude={"message_id"}), **changes})
