"""decide() under random interleavings: duplicates, reorders, timer fires and cancels.

A small world answers what decide() sends — executors start and finish steps, the test-runner
answers suites, child runs end — and delivers those answers in an order hypothesis picks, some
of them twice, with timers firing in between. Whatever the order, the invariants hold:
no attempt is dispatched twice, a run ends once and then changes no more, a run that ends
has heard back from or cancelled every child run it started, and every run ends once its
inputs are in.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sous_contracts.common import RunStatus, StepStatus, TestSummary
from sous_contracts.envelope import Envelope
from sous_contracts.runs import CancelOrderRun, OrderRunFinished, StartOrderRun
from sous_contracts.specs import RecipeSpec
from sous_contracts.steps import ExecuteStep, StepError, StepFinished, StepStarted
from sous_contracts.tests import RunTests, TestSuiteFinished
from sous_scheduler.domain.decide import Event, decide
from sous_scheduler.domain.events import Begin, ChildFinished, ClearTimer, Context, TimerFired
from sous_scheduler.domain.state import RunState, StepState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RUN = uuid.UUID(int=1)
TEST = {"name": "t", "check": {"kind": "metric", "output": "n", "op": ">", "value": 0}}


@st.composite
def recipes(draw: st.DrawFn) -> RecipeSpec:
    """Up to four steps in a random DAG: retries, a test, or a nested recipe each."""
    steps: dict[str, Any] = {}
    for i in range(draw(st.integers(1, 4))):
        earlier = [f"s{j}" for j in range(i)]
        needs = draw(st.lists(st.sampled_from(earlier), unique=True)) if earlier else []
        if i and draw(st.integers(0, 4)) == 0:
            steps[f"s{i}"] = {"recipe": "other/child", "needs": needs}
            continue
        step: dict[str, Any] = {
            "run": {"kind": "noop"},
            "needs": needs,
            "retries": {"max": draw(st.integers(0, 2)), "backoff": "1s"},
        }
        if draw(st.booleans()):
            step["tests"] = [TEST]
        steps[f"s{i}"] = step
    return RecipeSpec.model_validate({"recipe": "r", "steps": steps})


@dataclass
class World:
    """The run, what is in flight towards it, and what it has said so far."""

    recipe: RecipeSpec
    state: RunState
    pending: list[Event] = field(default_factory=list)
    delivered: list[Event] = field(default_factory=list)
    timers: dict[tuple[str, str | None], TimerFired] = field(default_factory=dict)
    sent: list[Envelope] = field(default_factory=list)
    children_heard: set[uuid.UUID] = field(default_factory=set)
    seconds: float = 0.0
    ids: Any = field(default_factory=lambda: itertools.count(1000))

    def context(self, start: int) -> Context:
        """The clock now, and ids counting up from `start`."""
        return Context(
            now=T0 + timedelta(seconds=self.seconds),
            new_id=_counter(start),
            heartbeat_interval_s=1,
            dispatch_lease_s=5,
        )

    def apply(self, event: Event, draw: st.DrawFn) -> None:
        start = next(self.ids) * 1000
        final_before = self.state.phase.final
        d = decide(self.state, self.recipe, event, self.context(start))
        again = decide(self.state, self.recipe, event, self.context(start))
        assert again == d, "decide() must give an equal decision for an equal input"
        if final_before:
            assert d.state == self.state
            assert not d.messages
            assert not d.timers
        self.state = d.state
        for t in d.timers:
            if isinstance(t, ClearTimer):
                self.timers.pop((t.kind, t.step), None)
            else:
                self.timers[(t.kind, t.step)] = TimerFired(t.kind, t.step, t.attempt)
        for m in d.messages:
            self.sent.append(m)
            self.pending += _answers(m, draw)
        if isinstance(event, ChildFinished):
            self.children_heard.add(event.child_run_id)
        if d.state.phase.final and not final_before:
            children = {m.order_run_id for m in self.sent if isinstance(m, StartOrderRun)}
            cancelled = {m.order_run_id for m in self.sent if isinstance(m, CancelOrderRun)}
            left = children - self.children_heard - cancelled
            assert not left, "a run ended with child runs neither ended nor cancelled"


def _counter(start: int) -> Any:
    counter = itertools.count(start)
    return lambda: uuid.UUID(int=next(counter))


def _answers(m: Envelope, draw: st.DrawFn) -> list[Event]:
    """What the rest of the mesh would send back for one message."""
    if isinstance(m, ExecuteStep):
        ids = {"order_run_id": RUN, "step_run_id": m.step_run_id, "attempt": m.attempt}
        status = draw(st.sampled_from([StepStatus.SUCCEEDED] * 3 + [StepStatus.FAILED]))
        error = None
        if status is StepStatus.FAILED:
            kind = draw(st.sampled_from(["exit_code", "shutdown"]))
            error = StepError(kind=kind, message="boom")
        return [
            StepStarted(**ids, step=m.step, worker_id="w"),
            StepFinished(**ids, step=m.step, worker_id="w", status=status, error=error),
        ]
    if isinstance(m, RunTests):
        blocking = draw(st.booleans()) and draw(st.booleans())
        return [
            TestSuiteFinished(
                order_run_id=RUN,
                step_run_id=m.step_run_id,
                suite_id=m.suite_id,
                step=m.step,
                summary=TestSummary(failed=int(blocking), passed=int(not blocking)),
                blocking=blocking,
                failed_tests=["t"] if blocking else [],
            )
        ]
    if isinstance(m, StartOrderRun):
        status = draw(st.sampled_from([RunStatus.SUCCEEDED, RunStatus.FAILED]))
        return [ChildFinished(m.order_run_id, status)]
    return []


def _fresh(recipe: RecipeSpec) -> RunState:
    return RunState(
        order_run_id=RUN,
        domain="d",
        recipe="r",
        variation="prod",
        kitchen="prod",
        steps={
            n: StepState(name=n, step_run_id=uuid.UUID(int=10 + i))
            for i, n in enumerate(recipe.steps)
        },
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recipe=recipes(), data=st.data())
def test_any_interleaving_keeps_the_invariants(recipe: RecipeSpec, data: st.DataObject) -> None:
    world = World(recipe, _fresh(recipe))
    world.apply(Begin(), data.draw)
    for _ in range(data.draw(st.integers(0, 40))):
        world.seconds += data.draw(st.sampled_from([0, 0.5, 3]))
        move = data.draw(st.sampled_from(["deliver", "deliver", "repeat", "timer", "cancel"]))
        if move == "deliver" and world.pending:
            event = world.pending.pop(data.draw(st.integers(0, len(world.pending) - 1)))
            world.delivered.append(event)
            world.apply(event, data.draw)
        elif move == "repeat" and world.delivered:
            world.apply(data.draw(st.sampled_from(world.delivered)), data.draw)
        elif move == "timer" and world.timers:
            key = data.draw(st.sampled_from(sorted(world.timers, key=str)))
            world.apply(world.timers.pop(key), data.draw)
        elif move == "cancel" and data.draw(st.integers(0, 9)) == 0:
            world.apply(CancelOrderRun(order_run_id=RUN, reason="by hand"), data.draw)
    # Then everything in flight arrives and every timer fires: the run must end.
    for _ in range(500):
        if world.pending:
            world.apply(world.pending.pop(0), data.draw)
        elif world.timers:
            world.apply(world.timers.pop(min(world.timers, key=str)), data.draw)
        else:
            break
    assert world.state.phase.final, "the run must end once its inputs are in"

    dispatched = [(m.step, m.attempt) for m in world.sent if isinstance(m, ExecuteStep)]
    assert len(dispatched) == len(set(dispatched)), "an attempt was dispatched twice"
    ends = [m for m in world.sent if isinstance(m, OrderRunFinished)]
    assert len(ends) == 1, "a run ends exactly once"
    assert ends[0].status.value == world.state.phase.value
