"""OpenLineage RunEvents of a run and its steps, derived from one state transition. Pure.

The scheduler owns run state, so it is the one that tells the lineage world: each decision
is compared with the state before it, and every run or step that started or ended in it
gets its event. A run's events come in the order a reader expects: the run's START, then
its steps' START and COMPLETE/FAIL/ABORT (a step's end before the starts it allowed), then
the run's end. A step that never started
(skipped by a condition, or left out when the run stopped) has no events.

A step's tests are a job of their own (`<step>.tests`, one run per test suite, child of the
step's run): they read what the step wrote, so the spec's data-quality facet, an input
dataset facet, goes on those datasets as inputs of the tests' run, and the step's outputs
stay plain. Every step, test suite and nested run names its parent run and the top-level run
of its nesting chain (`parent` run facet, with `root`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sous_scheduler.domain.state import RunPhase, RunState, StepPhase, StepState

SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
PARENT = "https://openlineage.io/spec/facets/1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet"
JOB_TYPE = "https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
ASSERTIONS = (
    "https://openlineage.io/spec/facets/1-0-1/DataQualityAssertionsDatasetFacet.json"
    "#/$defs/DataQualityAssertionsDatasetFacet"
)

_RUN_ENDS = {RunPhase.SUCCEEDED: "COMPLETE", RunPhase.FAILED: "FAIL", RunPhase.CANCELLED: "ABORT"}
_STEP_ENDS = {
    StepPhase.SUCCEEDED: "COMPLETE",
    StepPhase.FAILED: "FAIL",
    StepPhase.LOST: "FAIL",
    StepPhase.CANCELLED: "ABORT",
    StepPhase.SKIPPED: "ABORT",  # a started step skipped by its run's end (a retry wait)
}
_PASSING = frozenset({"passed", "log"})


@dataclass(frozen=True)
class Naming:
    """Where events say they come from and how jobs and datasets are named."""

    namespace: str = "sous"
    """Prefix of the job and dataset namespaces; the kitchen follows (`sous.prod`)."""
    producer: str = "urn:sous:scheduler"
    """The `producer` URI of every event and facet."""

    def kitchen(self, kitchen: str) -> str:
        """The namespace of a kitchen's jobs and of its plain dataset names."""
        return f"{self.namespace}.{kitchen}"

    def dataset(self, name: str, kitchen: str) -> dict[str, Any]:
        """A dataset reference: a URI keeps its own authority as namespace."""
        scheme, sep, rest = name.partition("://")
        if sep and "/" in rest:
            authority, _, path = rest.partition("/")
            return {"namespace": f"{scheme}://{authority}", "name": path}
        return {"namespace": self.kitchen(kitchen), "name": name}


def run_events(
    before: RunState, after: RunState, *, at: datetime, naming: Naming
) -> list[dict[str, Any]]:
    """Return the RunEvents of what started or ended between two states of one run."""
    out: list[dict[str, Any]] = []
    # A run cancelled while queued never started: it has no events at all.
    if before.started_at is None and after.started_at is not None:
        out.append(_run_event("START", after, at, naming))
    fresh, ended, suites, checked = [], [], [], []
    for name, step in after.steps.items():
        old = before.steps.get(name)
        if _started(step) and (old is None or not _started(old)):
            fresh.append(step)
        elif step.phase.final and old is not None and not old.phase.final and _started(step):
            ended.append(step)
        if _suite_ended(old, step):
            assert old is not None
            checked.append((old, step))
        if step.phase is StepPhase.TESTING and (old is None or old.suite_id != step.suite_id):
            suites.append(step)
    # A suite's end comes before its step's; a step's end before the starts it made possible;
    # a step that started in this very decision and ended in it too has its START first.
    out += [_tests_event(old, step, after, at, naming) for old, step in checked]
    out += [_step_event(_STEP_ENDS[s.phase], after, s, at, naming) for s in ended]
    out += [_step_event("START", after, s, at, naming) for s in fresh]
    out += [_step_event(_STEP_ENDS[s.phase], after, s, at, naming) for s in fresh if s.phase.final]
    out += [_tests_event(None, s, after, at, naming) for s in suites]
    if after.phase.final and not before.phase.final and after.started_at is not None:
        out.append(_run_event(_RUN_ENDS[after.phase], after, at, naming))
    return out


def _started(step: StepState) -> bool:
    return step.attempt > 0


def _suite_ended(old: StepState | None, step: StepState) -> bool:
    """True when the step's test suite ended: results, a timeout, or the run stopped."""
    return (
        old is not None
        and old.phase is StepPhase.TESTING
        and (step.phase is not StepPhase.TESTING or step.suite_id != old.suite_id)
    )


def _event(
    kind: str, run_id: uuid.UUID, job: str, at: datetime, state: RunState, naming: Naming
) -> dict[str, Any]:
    return {
        "eventType": kind,
        "eventTime": at.isoformat(),
        "producer": naming.producer,
        "schemaURL": SPEC,
        "run": {"runId": str(run_id), "facets": {}},
        "job": {"namespace": naming.kitchen(state.kitchen), "name": job, "facets": {}},
        "inputs": [],
        "outputs": [],
    }


def _facet(naming: Naming, schema: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": naming.producer, "_schemaURL": schema, **fields}


def _job_type(naming: Naming, kind: str) -> dict[str, Any]:
    return _facet(naming, JOB_TYPE, processingType="BATCH", integration="SOUS", jobType=kind)


def _job_of(recipe: str) -> str:
    """The job name of a run of `domain/recipe`."""
    return recipe.replace("/", ".")


def _run_job(state: RunState) -> str:
    return _job_of(f"{state.domain}/{state.recipe}")


def _parent(
    naming: Naming, state: RunState, run_id: uuid.UUID, job: str, root: bool = True
) -> dict[str, Any]:
    """The `parent` facet naming `run_id`/`job` (of `state`'s kitchen) and the chain's root."""
    where = naming.kitchen(state.kitchen)
    facet = _facet(
        naming, PARENT, run={"runId": str(run_id)}, job={"namespace": where, "name": job}
    )
    if root:
        top_id = state.root_order_run_id or state.order_run_id
        top_job = _job_of(state.root_recipe) if state.root_recipe else _run_job(state)
        facet["root"] = {
            "run": {"runId": str(top_id)},
            "job": {"namespace": where, "name": top_job},
        }
    return facet


def _run_event(kind: str, state: RunState, at: datetime, naming: Naming) -> dict[str, Any]:
    event = _event(kind, state.order_run_id, _run_job(state), at, state, naming)
    event["job"]["facets"]["jobType"] = _job_type(naming, "RECIPE")
    if state.parent_step_run_id is not None and state.parent_recipe and state.parent_step:
        # A nested run: the recipe step that started it is its parent (same kitchen).
        job = f"{_job_of(state.parent_recipe)}.{state.parent_step}"
        event["run"]["facets"]["parent"] = _parent(naming, state, state.parent_step_run_id, job)
    if kind != "START":
        # Sorted: the stored state does not keep the steps in the recipe's order.
        written = sorted({d for s in state.steps.values() for d in s.written})
        read = sorted({d for s in state.steps.values() for d in s.reads} - set(written))
        event["inputs"] = [naming.dataset(d, state.kitchen) for d in read]
        event["outputs"] = [naming.dataset(d, state.kitchen) for d in written]
    return event


def _step_event(
    kind: str, state: RunState, step: StepState, at: datetime, naming: Naming
) -> dict[str, Any]:
    event = _event(kind, step.step_run_id, f"{_run_job(state)}.{step.name}", at, state, naming)
    event["job"]["facets"]["jobType"] = _job_type(naming, "STEP")
    event["run"]["facets"]["parent"] = _parent(naming, state, state.order_run_id, _run_job(state))
    event["inputs"] = [naming.dataset(d, state.kitchen) for d in step.reads]
    event["outputs"] = [naming.dataset(d, state.kitchen) for d in step.written]
    return event


def _tests_event(
    old: StepState | None, step: StepState, state: RunState, at: datetime, naming: Naming
) -> dict[str, Any]:
    """START of a step's test suite (`old` None), or its end with the assertions."""
    suite = old or step
    assert suite.suite_id is not None
    kind = "START" if old is None else _suite_end(step)
    job = f"{_run_job(state)}.{step.name}"
    event = _event(kind, suite.suite_id, f"{job}.tests", at, state, naming)
    event["job"]["facets"]["jobType"] = _job_type(naming, "TEST")
    event["run"]["facets"]["parent"] = _parent(naming, state, step.step_run_id, job)
    inputs = [naming.dataset(d, state.kitchen) for d in step.written]
    if old is not None and step.test_results:
        assertions = [
            {"assertion": name, "success": status in _PASSING}
            for name, status in step.test_results.items()
        ]
        for dataset in inputs:
            dataset["inputFacets"] = {
                "dataQualityAssertions": _facet(naming, ASSERTIONS, assertions=assertions)
            }
    event["inputs"] = inputs
    return event


def _suite_end(step: StepState) -> str:
    """How a suite ended, from where it left its step."""
    if step.phase in (StepPhase.CANCELLED, StepPhase.SKIPPED):
        return "ABORT"  # its run stopped before the results came
    if step.phase is StepPhase.SUCCEEDED:
        return "COMPLETE"
    return "FAIL"  # a blocking test failed, or the suite timed out
