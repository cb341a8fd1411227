"""decide(): every legal move of runs and steps, and the illegal ones that change nothing."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sous_contracts.common import Outputs, RunStatus, StepStatus, TestSummary
from sous_contracts.runs import CancelOrderRun, StartOrderRun
from sous_contracts.specs import RecipeSpec
from sous_contracts.steps import StepError, StepFinished, StepHeartbeat, StepStarted
from sous_contracts.tests import TestSuiteFinished
from sous_scheduler.domain.decide import decide
from sous_scheduler.domain.events import (
    Begin,
    ChildFinished,
    ClearTimer,
    Context,
    SetTimer,
    TimerFired,
)
from sous_scheduler.domain.state import RunPhase, RunState, StepPhase, StepState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RUN = uuid.UUID(int=1)

RECIPE = RecipeSpec.model_validate(
    {
        "recipe": "daily",
        "params": {"day": {"default": "2026-01-01"}},
        "steps": {
            "extract": {
                "run": {"kind": "shell", "argv": ["echo", "${params.day}"]},
                "retries": {"max": 1, "backoff": "10s"},
            },
            "load": {
                "needs": ["extract"],
                "run": {"kind": "noop"},
                "tests": [
                    {
                        "name": "rows",
                        "check": {"kind": "metric", "output": "rows", "op": ">", "value": 0},
                    }
                ],
            },
            "side": {"run": {"kind": "noop"}},
            "child": {"needs": ["load"], "recipe": "finance/fx"},
        },
    }
)


def ctx(seconds: float = 0) -> Context:
    counter = itertools.count(100)
    return Context(now=T0 + timedelta(seconds=seconds), new_id=lambda: uuid.UUID(int=next(counter)))


def fresh() -> RunState:
    return RunState(
        order_run_id=RUN,
        domain="sales",
        recipe="daily",
        variation="prod",
        kitchen="prod",
        params={"day": "2026-01-01"},
        steps={
            n: StepState(name=n, step_run_id=uuid.UUID(int=10 + i))
            for i, n in enumerate(RECIPE.steps)
        },
    )


def started() -> RunState:
    return decide(fresh(), RECIPE, Begin(), ctx()).state


def sid(state: RunState, step: str) -> uuid.UUID:
    return state.step(step).step_run_id


def finished(
    state: RunState, step: str, status: StepStatus = StepStatus.SUCCEEDED, attempt: int = 1, **kw
) -> StepFinished:
    return StepFinished(
        order_run_id=RUN,
        step_run_id=sid(state, step),
        step=step,
        attempt=attempt,
        worker_id="w1",
        status=status,
        **kw,
    )


def types(d) -> list[str]:
    return [m.type for m in d.messages]


def test_begin_dispatches_every_ready_step_in_parallel() -> None:
    d = decide(fresh(), RECIPE, Begin(), ctx())
    assert d.state.phase is RunPhase.RUNNING
    assert types(d) == ["OrderRunStarted", "ExecuteStep", "ExecuteStep"]
    assert {d.state.step(n).phase for n in ("extract", "side")} == {StepPhase.DISPATCHED}
    assert d.state.step("load").phase is StepPhase.PENDING
    extract = d.messages[1]
    assert extract.spec["argv"] == ["echo", "2026-01-01"]
    assert any(isinstance(t, SetTimer) and t.kind == "lease" for t in d.timers)


def test_begin_twice_changes_nothing() -> None:
    d = decide(started(), RECIPE, Begin(), ctx())
    assert d.messages == []


def test_started_then_heartbeat_moves_the_lease() -> None:
    s = started()
    ev = StepStarted(
        order_run_id=RUN, step_run_id=sid(s, "extract"), step="extract", attempt=1, worker_id="w1"
    )
    d = decide(s, RECIPE, ev, ctx(1))
    assert d.state.step("extract").phase is StepPhase.RUNNING
    hb = StepHeartbeat(order_run_id=RUN, step_run_id=sid(s, "extract"), attempt=1, worker_id="w1")
    d2 = decide(d.state, RECIPE, hb, ctx(5))
    (lease,) = [t for t in d2.timers if isinstance(t, SetTimer)]
    assert lease.due == T0 + timedelta(seconds=5 + 15)


def test_success_without_tests_dispatches_the_next_step() -> None:
    d = decide(
        started(),
        RECIPE,
        finished(started(), "extract", outputs=Outputs(values={"rows": 5})),
        ctx(2),
    )
    assert d.state.step("extract").phase is StepPhase.SUCCEEDED
    assert types(d) == ["ExecuteStep"]
    assert d.messages[0].step == "load"


def test_success_with_tests_runs_the_suite_then_gates_on_it() -> None:
    s = decide(started(), RECIPE, finished(started(), "extract"), ctx(1)).state
    d = decide(s, RECIPE, finished(s, "load", outputs=Outputs(values={"rows": 5})), ctx(2))
    assert d.state.step("load").phase is StepPhase.TESTING
    assert types(d) == ["RunTests"]
    suite = d.messages[0]
    assert suite.tests[0].check == {"kind": "metric", "output": "rows", "op": ">", "value": 0}
    ok = TestSuiteFinished(
        order_run_id=RUN,
        step_run_id=sid(s, "load"),
        suite_id=suite.suite_id,
        step="load",
        summary=TestSummary(passed=1, warnings=1),
        blocking=False,
    )
    d2 = decide(d.state, RECIPE, ok, ctx(3))
    assert d2.state.step("load").phase is StepPhase.SUCCEEDED
    assert types(d2) == ["StartOrderRun"]  # the nested recipe starts as a child run
    child = d2.messages[0]
    assert (child.domain, child.recipe, child.parent_order_run_id) == ("finance", "fx", RUN)


def test_blocking_suite_fails_the_step_and_stops_the_run() -> None:
    s = decide(started(), RECIPE, finished(started(), "extract"), ctx(1)).state
    d = decide(s, RECIPE, finished(s, "load"), ctx(2))
    suite_id = d.messages[0].suite_id
    bad = TestSuiteFinished(
        order_run_id=RUN,
        step_run_id=sid(s, "load"),
        suite_id=suite_id,
        step="load",
        summary=TestSummary(failed=1),
        blocking=True,
        failed_tests=["rows"],
    )
    d2 = decide(d.state, RECIPE, bad, ctx(3))
    assert d2.state.phase is RunPhase.FAILED
    assert d2.state.step("load").reason == "error test(s) failed: rows"
    assert d2.state.step("child").phase is StepPhase.SKIPPED
    assert "step 'load' failed" in d2.state.step("child").reason
    assert d2.state.step("side").phase is StepPhase.CANCELLED
    assert types(d2) == ["CancelStep", "OrderRunFinished", "DomainRunCompleted"]
    assert d2.messages[1].status is RunStatus.FAILED
    assert d2.messages[2].tests.failed == 1


def test_failure_with_retries_left_waits_then_dispatches_a_new_attempt() -> None:
    s = started()
    err = StepError(kind="exit_code", message="exited with 2", exit_code=2)
    d = decide(s, RECIPE, finished(s, "extract", StepStatus.FAILED, error=err), ctx(1))
    assert d.state.step("extract").phase is StepPhase.RETRY_WAIT
    (retry,) = [t for t in d.timers if isinstance(t, SetTimer)]
    assert (retry.kind, retry.due) == ("retry", T0 + timedelta(seconds=11))
    d2 = decide(d.state, RECIPE, TimerFired("retry", "extract", 1), ctx(11))
    assert d2.state.step("extract").attempt == 2
    assert d2.messages[0].attempt == 2


def test_failure_without_retries_left_fails_the_run() -> None:
    s = started()
    s = s.with_step(s.step("extract").model_copy(update={"attempt": 2}))
    d = decide(s, RECIPE, finished(s, "extract", StepStatus.TIMED_OUT, attempt=2), ctx(1))
    assert d.state.phase is RunPhase.FAILED
    assert d.state.step("extract").phase is StepPhase.FAILED


def running(state: RunState, *steps: str) -> RunState:
    for step in steps:
        ev = StepStarted(
            order_run_id=RUN,
            step_run_id=sid(state, step),
            step=step,
            attempt=state.step(step).attempt,
            worker_id="w1",
        )
        state = decide(state, RECIPE, ev, ctx(1)).state
    return state


def test_lease_expiry_redispatches_when_retryable_else_marks_lost() -> None:
    s = running(started(), "extract", "side")
    d = decide(s, RECIPE, TimerFired("lease", "extract", 1), ctx(30))
    assert types(d) == ["CancelStep", "ExecuteStep"]
    assert d.state.step("extract").attempt == 2
    # The same step_run_id: what a sql step's record in the warehouse is keyed by.
    assert d.messages[1].step_run_id == sid(s, "extract")
    d2 = decide(d.state, RECIPE, TimerFired("lease", "side", 1), ctx(30))
    assert d2.state.step("side").phase is StepPhase.LOST
    assert d2.state.phase is RunPhase.FAILED
    assert "executor lost" in d2.state.reason


def test_an_attempt_no_executor_took_goes_out_again_without_using_a_retry() -> None:
    # `side` has no retries: an attempt that never started still must not fail the run.
    d = decide(started(), RECIPE, TimerFired("lease", "side", 1), ctx(30))
    assert types(d) == ["CancelStep", "ExecuteStep"]
    assert d.messages[1].attempt == 2
    side = d.state.step("side")
    assert (side.phase, side.attempt, side.unstarted) == (StepPhase.DISPATCHED, 2, 1)
    assert "not taken" in (side.reason or "")
    # Once started, the attempt counts: losing it fails the step that has no retries.
    s = running(d.state, "side")
    d2 = decide(s, RECIPE, TimerFired("lease", "side", 2), ctx(60))
    assert d2.state.step("side").phase is StepPhase.LOST


def test_shutdown_report_redispatches_at_once_when_retryable_else_marks_lost() -> None:
    s = started()
    gone = StepError(kind="shutdown", message="executor stopping")
    d = decide(s, RECIPE, finished(s, "extract", StepStatus.CANCELLED, error=gone), ctx(1))
    assert types(d) == ["ExecuteStep"]  # no retry backoff: the step did not fail
    assert d.messages[0].attempt == 2
    assert d.messages[0].step_run_id == sid(s, "extract")
    assert d.state.step("extract").phase is StepPhase.DISPATCHED
    d2 = decide(
        d.state, RECIPE, finished(d.state, "side", StepStatus.CANCELLED, error=gone), ctx(1)
    )
    assert d2.state.step("side").phase is StepPhase.LOST
    assert d2.state.phase is RunPhase.FAILED


def test_step_timeout_cancels_the_attempt() -> None:
    d = decide(started(), RECIPE, TimerFired("step_timeout", "side", 1), ctx(99))
    assert types(d)[0] == "CancelStep"
    assert d.state.step("side").phase is StepPhase.FAILED


@pytest.mark.parametrize(
    "event",
    [
        TimerFired("retry", "extract", 1),  # not waiting for a retry
        TimerFired("lease", "extract", 7),  # another attempt's timer
        TimerFired("lease", "load", 0),  # never dispatched
        TimerFired("test_timeout", "extract", 1),  # not testing
    ],
)
def test_stale_or_illegal_inputs_change_nothing(event) -> None:
    s = started()
    d = decide(s, RECIPE, event, ctx(1))
    assert (d.state, d.messages) == (s, [])


def test_stale_attempt_finish_is_ignored() -> None:
    s = started()
    d = decide(s, RECIPE, finished(s, "extract", attempt=3), ctx(1))
    assert (d.state, d.messages) == (s, [])


def test_duplicate_step_finished_changes_nothing_the_second_time() -> None:
    s = started()
    once = decide(s, RECIPE, finished(s, "side"), ctx(1))
    twice = decide(once.state, RECIPE, finished(s, "side"), ctx(1))
    assert (twice.state, twice.messages) == (once.state, [])


def test_cancel_reaches_running_steps_and_ends_the_run() -> None:
    d = decide(started(), RECIPE, CancelOrderRun(order_run_id=RUN, reason="wrong day"), ctx(1))
    assert d.state.phase is RunPhase.CANCELLED
    assert types(d) == ["CancelStep", "CancelStep", "OrderRunFinished", "DomainRunCompleted"]
    assert all(s.phase is StepPhase.CANCELLED for s in d.state.steps.values())
    assert ClearTimer("run_timeout", None) in d.timers


def test_ended_run_ignores_everything() -> None:
    d = decide(started(), RECIPE, CancelOrderRun(order_run_id=RUN), ctx(1))
    again = decide(d.state, RECIPE, Begin(), ctx(2))
    assert again.messages == []


def test_child_run_settles_the_parent_step_and_the_run_succeeds() -> None:
    s = started()
    for step in ("extract", "side"):
        s = decide(s, RECIPE, finished(s, step), ctx(1)).state
    d = decide(s, RECIPE, finished(s, "load"), ctx(2))
    suite_id = d.messages[0].suite_id
    ok = TestSuiteFinished(
        order_run_id=RUN,
        step_run_id=sid(s, "load"),
        suite_id=suite_id,
        step="load",
        summary=TestSummary(passed=1),
        blocking=False,
    )
    d = decide(d.state, RECIPE, ok, ctx(3))
    child_id = d.messages[0].order_run_id
    done = decide(
        d.state,
        RECIPE,
        ChildFinished(child_id, RunStatus.SUCCEEDED, outputs=Outputs(values={"fx": 1.1})),
        ctx(4),
    )
    assert done.state.phase is RunPhase.SUCCEEDED
    assert types(done) == ["OrderRunFinished", "DomainRunCompleted"]
    assert done.messages[1].outputs.values["fx"] == 1.1
    assert done.messages[1].tests.passed == 1


def test_failed_child_fails_the_parent() -> None:
    s = started()
    s = s.with_step(
        s.step("child").model_copy(
            update={"phase": StepPhase.RUNNING, "child_run_id": uuid.UUID(int=9)}
        )
    )
    d = decide(s, RECIPE, ChildFinished(uuid.UUID(int=9), RunStatus.FAILED, "boom"), ctx(1))
    assert d.state.phase is RunPhase.FAILED
    assert "child run failed: boom" in d.state.reason


def test_run_timeout_fails_the_run() -> None:
    d = decide(started(), RECIPE, TimerFired("run_timeout", None, 0), ctx(86400))
    assert d.state.phase is RunPhase.FAILED
    assert d.state.reason == "run timed out after 86400s"


def test_missing_placeholder_fails_the_step_with_reason() -> None:
    recipe = RecipeSpec.model_validate(
        {
            "recipe": "r",
            "steps": {"a": {"run": {"kind": "shell", "argv": ["echo", "${params.nope}"]}}},
        }
    )
    s = RunState(
        order_run_id=RUN,
        domain="d",
        recipe="r",
        variation="v",
        kitchen="k",
        steps={"a": StepState(name="a", step_run_id=uuid.UUID(int=5))},
    )
    d = decide(s, recipe, Begin(), ctx())
    assert d.state.phase is RunPhase.FAILED
    assert "${params.nope} does not resolve" in d.state.reason


def test_start_order_run_is_not_an_input_of_decide() -> None:
    cmd = StartOrderRun(order_run_id=RUN, domain="d", recipe="r")
    d = decide(started(), RECIPE, cmd, ctx())  # type: ignore[arg-type]
    assert d.messages == []


def test_tests_default_to_the_steps_own_sql_connection() -> None:
    recipe = RecipeSpec.model_validate(
        {
            "recipe": "r",
            "steps": {
                "a": {
                    "run": {"kind": "sql", "connection": "wh", "sql": "select 1"},
                    "tests": [
                        {"name": "t", "check": {"kind": "row_count", "table": "x", "min": 1}}
                    ],
                }
            },
        }
    )
    s = RunState(
        order_run_id=RUN,
        domain="d",
        recipe="r",
        variation="v",
        kitchen="k",
        connections={"wh": "env:WH", "api": "secret:api"},
        steps={"a": StepState(name="a", step_run_id=uuid.UUID(int=5))},
    )
    s = decide(s, recipe, Begin(), ctx()).state
    d = decide(s, recipe, finished(s, "a"), ctx(1))
    (suite,) = d.messages
    assert suite.connections == {"wh": "env:WH", "api": "secret:api", "default": "env:WH"}


@pytest.mark.parametrize(
    "event",
    [Begin(), CancelOrderRun(order_run_id=RUN, message_id=uuid.UUID(int=7), reason="stop")],
)
def test_the_same_input_and_context_give_an_equal_decision(event) -> None:
    state = fresh() if isinstance(event, Begin) else started()
    first, second = decide(state, RECIPE, event, ctx(1)), decide(state, RECIPE, event, ctx(1))
    assert first.messages  # something to compare
    assert first == second
    assert {m.occurred_at for m in first.messages} == {T0 + timedelta(seconds=1)}
