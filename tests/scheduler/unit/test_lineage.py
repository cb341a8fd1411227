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


SUITE = uuid.UUID(int=2)


def test_a_reported_dataset_joins_the_declared_ones_and_a_uri_keeps_its_authority() -> None:
    reported = Outputs(datasets=[DatasetRef(uri="s3://lake/finance/revenue.parquet")])
    before = state(RunPhase.RUNNING, load=step("load", StepPhase.RUNNING))
    done = step(
        "load",
        StepPhase.SUCCEEDED,
        reads=["sales.orders_daily"],
        writes=["finance.revenue"],
        outputs=reported,
    )
    (event,) = run_events(before, state(RunPhase.RUNNING, load=done), at=AT, naming=Naming())
    assert problems(event) == []
    assert event["eventType"] == "COMPLETE"
    assert event["job"] == {
        "namespace": "sous.prod",
        "name": "finance.revenue.load",
        "facets": {"jobType": event["job"]["facets"]["jobType"]},
    }
    assert event["outputs"] == [
        {"namespace": "sous.prod", "name": "finance.revenue"},
        {"namespace": "s3://lake", "name": "finance/revenue.parquet"},
    ]


def test_test_results_are_assertions_on_the_datasets_the_tests_read_and_outputs_stay_clean() -> (
    None
):
    wrote = {"reads": ["sales.orders_daily"], "writes": ["finance.revenue"], "suite_id": SUITE}
    running = state(RunPhase.RUNNING, load=step("load", StepPhase.RUNNING, writes=["x"]))
    testing = state(RunPhase.RUNNING, load=step("load", StepPhase.TESTING, **wrote))
    (start,) = run_events(running, testing, at=AT, naming=Naming())
    results = {"rows": "passed", "fresh": "warning"}
    done = state(
        RunPhase.RUNNING, load=step("load", StepPhase.SUCCEEDED, test_results=results, **wrote)
    )
    suite_end, step_end = run_events(testing, done, at=AT, naming=Naming())
    assert [problems(e) for e in (start, suite_end, step_end)] == [[], [], []]
    assert [(e["eventType"], e["job"]["name"]) for e in (start, suite_end, step_end)] == [
        ("START", "finance.revenue.load.tests"),
        ("COMPLETE", "finance.revenue.load.tests"),
        ("COMPLETE", "finance.revenue.load"),
    ]
    assert suite_end["run"]["runId"] == str(SUITE)
    parent = suite_end["run"]["facets"]["parent"]
    assert (parent["run"]["runId"], parent["job"]["name"]) == (
        str(uuid.uuid5(RUN, "load")),
        "finance.revenue.load",
    )
    (checked,) = suite_end["inputs"]
    assert (checked["name"], suite_end["outputs"]) == ("finance.revenue", [])
    facet = checked["inputFacets"]["dataQualityAssertions"]
    assert facet["assertions"] == [
        {"assertion": "rows", "success": True},
        {"assertion": "fresh", "success": False},
    ]
    assert start["inputs"] == [{"namespace": "sous.prod", "name": "finance.revenue"}]
    # The step itself: what it read and wrote, no facet on either side.
    assert step_end["outputs"] == [{"namespace": "sous.prod", "name": "finance.revenue"}]
    assert step_end["inputs"] == [{"namespace": "sous.prod", "name": "sales.orders_daily"}]


def test_a_nested_run_names_the_step_that_started_it_and_the_root_run() -> None:
    parent_step = uuid.UUID(int=7)
    top = uuid.UUID(int=8)
    nested = {
        "domain": "finance",
        "recipe": "fx_rates",
        "parent_order_run_id": uuid.UUID(int=9),
        "parent_step": "fx",
        "parent_recipe": "finance/revenue",
        "parent_step_run_id": parent_step,
        "root_order_run_id": top,
        "root_recipe": "sales/daily",
    }
    queued = state(RunPhase.QUEUED).model_copy(update=nested)
    started = state(RunPhase.RUNNING).model_copy(update=nested)
    (run_start,) = run_events(queued, started, at=AT, naming=Naming())
    assert problems(run_start) == []
    assert run_start["run"]["facets"]["parent"] == {
        "_producer": "urn:sous:scheduler",
        "_schemaURL": run_start["run"]["facets"]["parent"]["_schemaURL"],
        "run": {"runId": str(parent_step)},
        "job": {"namespace": "sous.prod", "name": "finance.revenue.fx"},
        "root": {
            "run": {"runId": str(top)},
            "job": {"namespace": "sous.prod", "name": "sales.daily"},
        },
    }
    # Its steps: the nested run is their parent, the chain's top run their root.
    before = started.with_step(step("a", StepPhase.PENDING, attempt=0))
    (step_start,) = run_events(
        before, started.with_step(step("a", StepPhase.RUNNING)), at=AT, naming=Naming()
    )
    parent = step_start["run"]["facets"]["parent"]
    assert (parent["run"]["runId"], parent["job"]["name"]) == (str(RUN), "finance.fx_rates")
    assert parent["root"]["run"]["runId"] == str(top)
    # A top-level run has no parent; it is its steps' root.
    assert (
        "parent"
        not in run_events(state(RunPhase.QUEUED), state(RunPhase.RUNNING), at=AT, naming=Naming())[
            0
        ]["run"]["facets"]
    )


def test_the_schema_refuses_facets_without_their_required_fields() -> None:
    running = state(RunPhase.RUNNING, load=step("load", StepPhase.RUNNING))
    done = state(RunPhase.RUNNING, load=step("load", StepPhase.SUCCEEDED, writes=["t"]))
    (event,) = run_events(running, done, at=AT, naming=Naming())
    good = json.loads(json.dumps(event))
    bad = json.loads(json.dumps(event))
    del bad["run"]["facets"]["parent"]["_producer"]
    del bad["run"]["facets"]["parent"]["job"]
    bad["inputs"] = [
        {
            "namespace": "sous.prod",
            "name": "t",
            "inputFacets": {
                "dataQualityAssertions": {
                    "_producer": "urn:sous:scheduler",
                    "_schemaURL": "https://openlineage.io/x",
                    "assertions": [{"assertion": "rows"}],
                }
            },
        }
    ]
    bad["outputs"][0]["outputFacets"] = {"stats": {"rowCount": 1}}
    assert problems(good) == []
    assert sorted(problems(bad)) == [
        "inputs/0/inputFacets/dataQualityAssertions/assertions/0: 'success' is a required property",
        "outputs/0/outputFacets/stats: '_producer' is a required property",
        "outputs/0/outputFacets/stats: '_schemaURL' is a required property",
        "run/facets/parent: '_producer' is a required property",
        "run/facets/parent: 'job' is a required property",
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
