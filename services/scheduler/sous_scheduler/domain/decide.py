"""decide(): the order-run state machine. Pure: no I/O, no clock, no random ids.

Every input — a step event, a test summary, a timer, a cancel, a child run's end — goes
through one function that returns the new state, the messages to emit and the timer changes.
Inputs that do not fit the state (a stale attempt, a duplicate, a run already ended) change
nothing, which is what makes redelivery and races harmless.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sous_contracts.common import RunStatus, StepStatus
from sous_contracts.runs import CancelOrderRun, StartOrderRun
from sous_contracts.specs import RecipeSpec, StepSpec
from sous_contracts.specs.placeholders import ParamError, substitute
from sous_contracts.steps import (
    CancelStep,
    ExecuteStep,
    StepFinished,
    StepHeartbeat,
    StepSkipped,
    StepStarted,
)
from sous_contracts.tests import RunTests, TestDefinition, TestSuiteFinished
from sous_scheduler.domain.events import (
    Begin,
    ChildFinished,
    ClearTimer,
    Context,
    Decision,
    SetTimer,
    TimerFired,
    TimerKind,
)
from sous_scheduler.domain.finish import finish, started
from sous_scheduler.domain.gate import Broken, Skip, gate
from sous_scheduler.domain.state import RunPhase, RunState, StepPhase, StepState

Event = (
    Begin
    | StepStarted
    | StepHeartbeat
    | StepFinished
    | TestSuiteFinished
    | TimerFired
    | ChildFinished
    | CancelOrderRun
)


_STEP_TIMERS: tuple[TimerKind, ...] = ("lease", "step_timeout", "retry", "test_timeout")


def decide(run: RunState, recipe: RecipeSpec, event: Event, ctx: Context) -> Decision:
    """Apply one input to a run; return the new state, outgoing messages and timer changes.

    Deterministic: every id and time comes from `ctx`, the messages' own `message_id` and
    `occurred_at` too, so the same input and context give an equal decision.
    """
    d = _decide(run, recipe, event, ctx)
    d.messages = [
        m.model_copy(update={"message_id": ctx.new_id(), "occurred_at": ctx.now})
        for m in d.messages
    ]
    return d


def _decide(run: RunState, recipe: RecipeSpec, event: Event, ctx: Context) -> Decision:
    d = Decision(run)
    if run.phase.final:
        return d
    match event:
        case Begin():
            _begin(d, recipe, ctx)
        case CancelOrderRun():
            _stop(d, recipe, ctx, RunPhase.CANCELLED, event.reason)
        case StepStarted() | StepHeartbeat():
            _alive(d, event, ctx)
        case StepFinished():
            _step_finished(d, recipe, event, ctx)
        case TestSuiteFinished():
            _suite_finished(d, recipe, event, ctx)
        case TimerFired():
            _timer(d, recipe, event, ctx)
        case ChildFinished():
            _child_finished(d, recipe, event, ctx)
    if d.state.phase is RunPhase.RUNNING:
        _advance(d, recipe, ctx)
    return d


def _begin(d: Decision, recipe: RecipeSpec, ctx: Context) -> None:
    if d.state.phase is not RunPhase.QUEUED:
        return
    d.state = d.state.model_copy(update={"phase": RunPhase.RUNNING, "started_at": ctx.now})
    d.messages.append(started(d.state, ctx))
    d.timers.append(SetTimer("run_timeout", None, 0, ctx.now + timedelta(seconds=recipe.timeout)))


_DONE = (StepPhase.SUCCEEDED, StepPhase.SKIPPED)


def _advance(d: Decision, recipe: RecipeSpec, ctx: Context) -> None:
    """Dispatch (or skip) every ready step; end the run when every step has ended.

    A skip makes its dependants ready at once, so passes repeat until one skips nothing.
    """
    again = True
    while again:
        again = False
        for name, spec in recipe.steps.items():
            step = d.state.step(name)
            if step.phase is StepPhase.PENDING and all(
                d.state.step(n).phase in _DONE for n in spec.needs
            ):
                _start_or_skip(d, recipe, step, spec, ctx)
                if d.state.phase is not RunPhase.RUNNING:
                    return
                again = again or d.state.step(name).phase is StepPhase.SKIPPED
    if all(s.phase.final for s in d.state.steps.values()):
        ok = all(s.phase in _DONE for s in d.state.steps.values())
        finish(d, ctx, RunPhase.SUCCEEDED if ok else RunPhase.FAILED, None)


def _start_or_skip(
    d: Decision, recipe: RecipeSpec, step: StepState, spec: StepSpec, ctx: Context
) -> None:
    try:
        params = _context(d.state, spec)["params"]
    except ParamError:
        params = d.state.params  # _dispatch reports the param error itself
    match gate(d.state, step.name, spec, params):
        case None:
            _dispatch(d, recipe, step, spec, ctx)
        case Broken(error=error):
            _fail_step(d, recipe, step, error, ctx)
        case Skip() as skip:
            d.state = d.state.with_step(
                step.model_copy(
                    update={
                        "phase": StepPhase.SKIPPED,
                        "reason": skip.reason,
                        "finished_at": ctx.now,
                    }
                )
            )
            d.messages.append(
                StepSkipped(
                    **_ids(d.state, step, ctx),
                    step=step.name,
                    reason=skip.reason,
                    when=skip.when,
                    seen=skip.seen,
                )
            )


def _context(state: RunState, spec: StepSpec) -> dict[str, Any]:
    upstream = {n: {"outputs": s.outputs.values} for n, s in state.steps.items()}
    base = {
        "params": state.params,
        "steps": upstream,
        "run": {
            "id": str(state.order_run_id),
            "domain": state.domain,
            "recipe": state.recipe,
            "variation": state.variation,
            "kitchen": state.kitchen,
        },
    }
    step_params = {**state.params, **substitute(spec.params, base)}
    return {**base, "params": step_params}


def _dispatch(
    d: Decision, recipe: RecipeSpec, step: StepState, spec: StepSpec, ctx: Context
) -> None:
    attempt = step.attempt + 1
    try:
        values = _context(d.state, spec)
        step = step.model_copy(
            update={
                "reads": _datasets(spec.inputs, values),
                "writes": _datasets(spec.outputs, values),
            }
        )
        if spec.recipe is not None:
            _start_child(d, step, spec, values, ctx)
            return
        if spec.run is None:  # an unexpanded `use:`; the registry expands ingredients
            raise ParamError(f"step '{step.name}' has no runnable action")
        run_spec = substitute(spec.run.model_dump(mode="json", by_alias=True), values)
    except ParamError as exc:
        _fail_step(d, recipe, step, f"step '{step.name}': {exc}", ctx)
        return
    command = ExecuteStep(
        **_ids(d.state, step, ctx),
        step=step.name,
        attempt=attempt,
        domain=d.state.domain,
        kitchen=d.state.kitchen,
        variation=d.state.variation,
        kind=spec.run.kind,
        spec=run_spec,
        params=values["params"],
        connections=d.state.connections,
        timeout_s=spec.timeout or 3600.0,
        heartbeat_interval_s=ctx.heartbeat_interval_s,
        deadline=ctx.now + timedelta(seconds=ctx.dispatch_lease_s),
    )
    d.messages.append(command)
    d.state = d.state.with_step(
        step.model_copy(
            update={"phase": StepPhase.DISPATCHED, "attempt": attempt, "worker_id": None}
        )
    )
    d.timers += [
        SetTimer("lease", step.name, attempt, ctx.now + timedelta(seconds=ctx.dispatch_lease_s)),
        SetTimer(
            "step_timeout",
            step.name,
            attempt,
            ctx.now + timedelta(seconds=(spec.timeout or 3600.0) + ctx.dispatch_lease_s),
        ),
    ]


def _datasets(names: list[str], values: dict[str, Any]) -> list[str]:
    """Resolve `${params.x}` in dataset names; repeats kept once, in order."""
    return list(dict.fromkeys(str(substitute(n, values)) for n in names))


def _start_child(
    d: Decision, step: StepState, spec: StepSpec, values: dict[str, Any], ctx: Context
) -> None:
    assert spec.recipe is not None
    domain, _, name = spec.recipe.rpartition("/")
    child_id = ctx.new_id()
    d.messages.append(
        StartOrderRun(
            producer="scheduler",
            correlation_id=d.state.correlation_id or d.state.order_run_id,
            causation_id=ctx.cause_id,
            order_run_id=child_id,
            domain=domain or d.state.domain,
            recipe=name,
            kitchen=d.state.kitchen,
            params=substitute(spec.with_, values),
            parent_order_run_id=d.state.order_run_id,
            parent_step=step.name,
            parent_recipe=f"{d.state.domain}/{d.state.recipe}",
            parent_step_run_id=step.step_run_id,
            root_order_run_id=d.state.root_order_run_id or d.state.order_run_id,
            root_recipe=d.state.root_recipe or f"{d.state.domain}/{d.state.recipe}",
            causation_depth=d.state.causation_depth,
            fire_triggers=d.state.fire_triggers,  # a backfill's children stay quiet too
        )
    )
    d.state = d.state.with_step(
        step.model_copy(
            update={
                "phase": StepPhase.RUNNING,
                "attempt": step.attempt + 1,
                "child_run_id": child_id,
                "started_at": ctx.now,
            }
        )
    )


def _ids(state: RunState, step: StepState, ctx: Context) -> dict[str, Any]:
    return {
        "producer": "scheduler",
        "correlation_id": state.correlation_id or state.order_run_id,
        "causation_id": ctx.cause_id,
        "order_run_id": state.order_run_id,
        "step_run_id": step.step_run_id,
    }


def _current(d: Decision, step_run_id: Any, attempt: int) -> StepState | None:
    step = d.state.find_step(step_run_id)
    return step if step is not None and step.attempt == attempt else None


def _alive(d: Decision, event: StepStarted | StepHeartbeat, ctx: Context) -> None:
    step = _current(d, event.step_run_id, event.attempt)
    if step is None or step.phase not in (StepPhase.DISPATCHED, StepPhase.RUNNING):
        return
    if step.phase is StepPhase.DISPATCHED:
        step = step.model_copy(update={"phase": StepPhase.RUNNING, "started_at": ctx.now})
    d.state = d.state.with_step(step.model_copy(update={"worker_id": event.worker_id}))
    lease = ctx.heartbeat_interval_s * ctx.lease_factor
    d.timers.append(SetTimer("lease", step.name, step.attempt, ctx.now + timedelta(seconds=lease)))


def _step_finished(d: Decision, recipe: RecipeSpec, event: StepFinished, ctx: Context) -> None:
    step = _current(d, event.step_run_id, event.attempt)
    if step is None or step.phase not in (StepPhase.DISPATCHED, StepPhase.RUNNING):
        return
    d.timers += [ClearTimer("lease", step.name), ClearTimer("step_timeout", step.name)]
    step = step.model_copy(update={"outputs": event.outputs, "worker_id": event.worker_id})
    if event.status is StepStatus.SUCCEEDED:
        _succeeded_or_test(d, recipe, step, ctx)
        return
    why = event.error.message if event.error else event.status.value
    reason = f"attempt {step.attempt} {event.status.value}: {why}"
    if event.error is not None and event.error.kind == "shutdown":
        _lost_attempt(d, recipe, step, reason, ctx)  # the executor left, not the step failed
        return
    _failed_attempt(d, recipe, step, reason, ctx)


def _succeeded_or_test(d: Decision, recipe: RecipeSpec, step: StepState, ctx: Context) -> None:
    spec = recipe.steps[step.name]
    if not spec.tests:
        d.state = d.state.with_step(
            step.model_copy(update={"phase": StepPhase.SUCCEEDED, "finished_at": ctx.now})
        )
        return
    values = _context(d.state, spec)
    values["outputs"] = step.outputs.values
    try:
        tests = [
            TestDefinition(
                name=t.name,
                kind=t.check.kind,
                check=substitute(t.check.model_dump(mode="json"), values),
                severity=t.severity,
                timeout_s=t.timeout or 60.0,
            )
            for t in spec.tests
        ]
    except ParamError as exc:
        _fail_step(d, recipe, step, f"tests of step '{step.name}': {exc}", ctx)
        return
    suite_id = ctx.new_id()
    d.messages.append(
        RunTests(
            **_ids(d.state, step, ctx),
            step=step.name,
            attempt=step.attempt,
            suite_id=suite_id,
            domain=d.state.domain,
            recipe=d.state.recipe,
            kitchen=d.state.kitchen,
            variation=d.state.variation,
            tests=tests,
            outputs=step.outputs,
            params=values["params"],
            connections=_test_connections(d.state, spec),
        )
    )
    d.state = d.state.with_step(
        step.model_copy(
            # A new suite's results replace the last one's: none until they arrive.
            update={"phase": StepPhase.TESTING, "suite_id": suite_id, "test_results": {}}
        )
    )
    wait = sum(t.timeout_s for t in tests) + ctx.test_grace_s
    d.timers.append(
        SetTimer("test_timeout", step.name, step.attempt, ctx.now + timedelta(seconds=wait))
    )


def _test_connections(state: RunState, spec: StepSpec) -> dict[str, str]:
    """The run's connections, with the step's own SQL connection as the tests' default."""
    connections = dict(state.connections)
    named = getattr(spec.run, "connection", None)
    if named is not None and named in connections:
        connections["default"] = connections[named]
    return connections


def _failed_attempt(
    d: Decision, recipe: RecipeSpec, step: StepState, reason: str, ctx: Context
) -> None:
    retries = recipe.steps[step.name].retries
    if step.tries <= retries.max:
        wait = min(retries.backoff * retries.factor ** (step.tries - 1), retries.max_backoff)
        d.state = d.state.with_step(
            step.model_copy(update={"phase": StepPhase.RETRY_WAIT, "reason": reason})
        )
        d.timers.append(
            SetTimer("retry", step.name, step.attempt, ctx.now + timedelta(seconds=wait))
        )
        return
    _fail_step(d, recipe, step, reason, ctx)


def _lost_attempt(
    d: Decision, recipe: RecipeSpec, step: StepState, reason: str, ctx: Context
) -> None:
    """The attempt's executor is gone: a new attempt at once when retries remain, else lost."""
    if step.tries <= recipe.steps[step.name].retries.max:
        _dispatch(
            d, recipe, step.model_copy(update={"reason": reason}), recipe.steps[step.name], ctx
        )
    else:
        _fail_step(d, recipe, step, reason, ctx, StepPhase.LOST)


def _fail_step(
    d: Decision,
    recipe: RecipeSpec,
    step: StepState,
    reason: str,
    ctx: Context,
    phase: StepPhase = StepPhase.FAILED,
) -> None:
    d.state = d.state.with_step(
        step.model_copy(update={"phase": phase, "reason": reason, "finished_at": ctx.now})
    )
    _stop(d, recipe, ctx, RunPhase.FAILED, f"step '{step.name}' {phase.value}: {reason}")


def _suite_finished(
    d: Decision, recipe: RecipeSpec, event: TestSuiteFinished, ctx: Context
) -> None:
    step = d.state.find_step(event.step_run_id)
    if step is None or step.phase is not StepPhase.TESTING or step.suite_id != event.suite_id:
        return
    d.timers.append(ClearTimer("test_timeout", step.name))
    step = step.model_copy(update={"tests": event.summary, "test_results": event.results})
    if event.blocking:
        names = ", ".join(event.failed_tests) or "?"
        _fail_step(d, recipe, step, f"error test(s) failed: {names}", ctx)
        return
    d.state = d.state.with_step(
        step.model_copy(update={"phase": StepPhase.SUCCEEDED, "finished_at": ctx.now})
    )


def _timer(d: Decision, recipe: RecipeSpec, event: TimerFired, ctx: Context) -> None:
    if event.kind == "run_timeout":
        _stop(d, recipe, ctx, RunPhase.FAILED, f"run timed out after {recipe.timeout:g}s")
        return
    if event.step is None or event.step not in d.state.steps:
        return
    step = d.state.step(event.step)
    if step.attempt != event.attempt:
        return
    if event.kind == "retry" and step.phase is StepPhase.RETRY_WAIT:
        _dispatch(d, recipe, step, recipe.steps[step.name], ctx)
    elif event.kind == "lease" and step.phase is StepPhase.DISPATCHED:
        # No executor took the attempt before its deadline (one outage or another kept it
        # from them), and none will: executors drop an ExecuteStep past its deadline. It
        # never started, so a new attempt goes out at once and uses up no retry.
        d.timers.append(ClearTimer("step_timeout", step.name))
        d.messages.append(
            CancelStep(**_ids(d.state, step, ctx), attempt=step.attempt, reason="not taken")
        )
        reason = f"attempt {step.attempt} not taken by any executor in time"
        step = step.model_copy(update={"unstarted": step.unstarted + 1, "reason": reason})
        _dispatch(d, recipe, step, recipe.steps[step.name], ctx)
    elif event.kind == "lease" and step.phase is StepPhase.RUNNING:
        d.timers.append(ClearTimer("step_timeout", step.name))
        d.messages.append(
            CancelStep(**_ids(d.state, step, ctx), attempt=step.attempt, reason="lease expired")
        )
        who = f" (worker {step.worker_id})" if step.worker_id else ""
        reason = f"executor lost: no heartbeat for attempt {step.attempt}{who}"
        _lost_attempt(d, recipe, step, reason, ctx)
    elif event.kind == "step_timeout" and step.phase in (StepPhase.DISPATCHED, StepPhase.RUNNING):
        d.timers.append(ClearTimer("lease", step.name))
        d.messages.append(
            CancelStep(**_ids(d.state, step, ctx), attempt=step.attempt, reason="timed out")
        )
        _failed_attempt(d, recipe, step, f"attempt {step.attempt} timed out", ctx)
    elif event.kind == "test_timeout" and step.phase is StepPhase.TESTING:
        _fail_step(d, recipe, step, "no test results arrived in time", ctx)


def _child_finished(d: Decision, recipe: RecipeSpec, event: ChildFinished, ctx: Context) -> None:
    step = next((s for s in d.state.steps.values() if s.child_run_id == event.child_run_id), None)
    if step is None or step.phase is not StepPhase.RUNNING:
        return
    step = step.model_copy(update={"outputs": event.outputs, "tests": event.tests})
    if event.status is RunStatus.SUCCEEDED:
        d.state = d.state.with_step(
            step.model_copy(update={"phase": StepPhase.SUCCEEDED, "finished_at": ctx.now})
        )
    else:
        _fail_step(d, recipe, step, f"child run {event.status.value}: {event.reason}", ctx)


def _stop(
    d: Decision, recipe: RecipeSpec, ctx: Context, phase: RunPhase, reason: str | None
) -> None:
    """End the run: skip what has not started, cancel what is out, emit the end."""
    for step in list(d.state.steps.values()):
        if step.phase.final:
            continue
        if step.phase in (StepPhase.PENDING, StepPhase.RETRY_WAIT):
            new, why = (
                StepPhase.SKIPPED if phase is RunPhase.FAILED else StepPhase.CANCELLED,
                reason,
            )
        else:
            new, why = StepPhase.CANCELLED, reason
            if step.child_run_id is not None:
                d.messages.append(
                    CancelOrderRun(
                        producer="scheduler",
                        causation_id=ctx.cause_id,
                        correlation_id=d.state.correlation_id or d.state.order_run_id,
                        order_run_id=step.child_run_id,
                        reason=f"parent run: {reason}",
                    )
                )
            elif step.phase is not StepPhase.TESTING:
                d.messages.append(
                    CancelStep(
                        **_ids(d.state, step, ctx),
                        attempt=step.attempt,
                        reason=reason or "run stopped",
                    )
                )
        d.state = d.state.with_step(
            step.model_copy(
                update={"phase": new, "reason": f"not finished: {why}", "finished_at": ctx.now}
            )
        )
        for kind in _STEP_TIMERS:
            d.timers.append(ClearTimer(kind, step.name))
    finish(d, ctx, phase, reason)
