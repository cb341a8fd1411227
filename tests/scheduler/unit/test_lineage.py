"""OpenLineage events from state transitions: which, in what order, named how. Pure."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from sous_contracts.common import DatasetRef, Outputs
from sous_scheduler.adapters.lineage import LineageOut
from sous_scheduler.domain.lineage import Naming, run_events
from sous_scheduler.domain.state import RunPhase, RunState, StepPhase, StepState
from sous_scheduler.settings import LineageSettings
from tests.scheduler.openlineage import problems

AT = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
RUN = uuid.UUID(int=1)


def state(phase: RunPhase, **steps: StepState) -> RunState:
    return RunState(
        order_run_id=RUN,
        domain="finance",
        recipe="revenue",
        variation="prod",
        kitchen="prod",
        phase=phase,
        steps=steps,
        started_at=AT if phase is not RunPhase.QUEUED else None,
    )


def step(name: str, phase: StepPhase, attempt: int = 1, **kw) -> StepState:
    return StepState(
        name=name, step_run_id=uuid.uuid5(RUN, name), phase=phase, attempt=attempt, **kw
    )


def test_a_reported_dataset_joins_the_declared_ones_and_a_uri_keeps_its_authority() -> None:
    reported = Outputs(datasets=[DatasetRef(uri="s3://lake/finance/revenue.parquet")])
    before = state(RunPhase.RUNNING, load=step("load", StepPhase.RUNNING))
    done = step(
        "load",
        StepPhase.SUCCEEDED,
        reads=["sales.orders_daily"],
        writes=["finance.revenue"],
        outputs=reported,
        test_results={"rows": "passed", "fresh": "warning"},
    )
    (event,) = run_events(before, state(RunPhase.RUNNING, load=done), at=AT, naming=Naming())
    assert problems(event) == []
    assert event["eventType"] == "COMPLETE"
    assert event["job"] == {
        "namespace": "sous.prod",
        "name": "finance.revenue.load",
        "facets": {"jobType": event["job"]["facets"]["jobType"]},
    }
    assert [(d["namespace"], d["name"]) for d in event["outputs"]] == [
        ("sous.prod", "finance.revenue"),
        ("s3://lake", "finance/revenue.parquet"),
    ]
    facet = event["outputs"][0]["facets"]["dataQualityAssertions"]
    assert facet["assertions"] == [
        {"assertion": "rows", "success": True},
        {"assertion": "fresh", "success": False},
    ]


def test_a_step_that_never_started_has_no_events_and_the_run_ends_last() -> None:
    before = state(
        RunPhase.RUNNING,
        a=step("a", StepPhase.RUNNING),
        b=step("b", StepPhase.PENDING, attempt=0),
    )
    after = state(
        RunPhase.FAILED,
        a=step("a", StepPhase.FAILED),
        b=step("b", StepPhase.SKIPPED, attempt=0),
    )
    events = run_events(before, after, at=AT, naming=Naming())
    assert [(e["eventType"], e["job"]["name"]) for e in events] == [
        ("FAIL", "finance.revenue.a"),
        ("FAIL", "finance.revenue"),
    ]
    assert [problems(e) for e in events] == [[], []]


def test_nothing_changed_or_a_run_cancelled_while_queued_means_no_events() -> None:
    same = state(RunPhase.RUNNING, a=step("a", StepPhase.RUNNING))
    assert run_events(same, same, at=AT, naming=Naming()) == []
    queued = state(RunPhase.QUEUED, a=step("a", StepPhase.PENDING, attempt=0))
    cancelled = queued.model_copy(update={"phase": RunPhase.CANCELLED})
    assert run_events(queued, cancelled, at=AT, naming=Naming()) == []


def test_records_go_to_the_lineage_topic_keyed_by_the_run_and_none_when_off() -> None:
    before = state(RunPhase.QUEUED)
    after = state(RunPhase.RUNNING)
    out = LineageOut(LineageSettings(transport="kafka"), prefix="staging.")
    (record,) = out.records(before, after, AT)
    assert (record.topic, record.key, record.headers) == (
        "staging.sous.lineage",
        str(RUN).encode(),
        {"type": "openlineage.RunEvent"},
    )
    assert json.loads(record.value)["eventType"] == "START"
    off = LineageOut(LineageSettings(transport="off"))
    assert off.records(before, after, AT) == []
