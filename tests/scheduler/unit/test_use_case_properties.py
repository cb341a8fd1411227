"""The use cases under random interleavings: duplicates, reorders, cancels and timer fires.

Unlike `test_decide_properties.py`, every input goes through the scheduler's use cases on
the fake store (inbox, run locks, timers, trigger firings, outbox), the way the handlers
deliver them. A small world answers every dispatched attempt; hypothesis picks which
pending message is delivered next, whether it is delivered again later, and when the clock
jumps and timers fire. Whatever the order: no attempt is dispatched twice, a run ends once,
one downstream run per (trigger, upstream message), and every run ends once the inputs are in.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sous_contracts.common import RunStatus, StepStatus
from sous_contracts.envelope import Envelope
from sous_contracts.runs import (
    CancelOrderRun,
    DomainRunCompleted,
    OrderRunFinished,
    OrderRunStarted,
    StartOrderRun,
)
from sous_contracts.steps import ExecuteStep, StepEventsMark, StepFinished, StepStarted
from sous_scheduler.domain.state import RunPhase
from tests.scheduler.integration.conftest import recipe
from tests.scheduler.world import NOOP, World, answers, start

RETRIED = {**NOOP, "retries": {"max": 1, "backoff": "2s"}}
UPSTREAM = recipe("a", "chain", {"one": RETRIED, "two": {**RETRIED, "needs": ["one"]}})
DOWNSTREAM = recipe(
    "b", "follow", {"x": NOOP}, triggers=[{"on": {"domain": "a"}, "variation": "prod"}]
)


class Scenario:
    """The world's pending messages and how each is delivered."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.world = World()
        self.pending: list[Envelope] = []
        self.seen = 0
        self.completions: set[uuid.UUID] = set()
        self.commanded: set[uuid.UUID] = set()

    async def deliver(self, m: Envelope) -> None:
        w = self.world
        if isinstance(m, StartOrderRun):
            await w.scheduler.start(m)
        elif isinstance(m, CancelOrderRun):
            await w.scheduler.cancel(m)
        elif isinstance(m, StepStarted | StepFinished | StepEventsMark):
            await w.scheduler.on_run_events([m])
        elif isinstance(m, DomainRunCompleted):
            if m.domain == "a" and m.status is RunStatus.SUCCEEDED:
                self.completions.add(m.message_id)
            # Seen again after its inbox record was purged, or by a second path: the firing
            # record is what keeps it to one run then.
            purged = self.data.draw(st.booleans(), label="inbox purged")
            w.host.group_id = "sous-scheduler-purged" if purged else "sous-scheduler"
            await w.triggers.on_completed(m)
            w.host.group_id = "sous-scheduler"
        self.react()

    def react(self) -> None:
        """Answer what the scheduler queued since last time, as executors and consumers do."""
        new = self.world.tables.outbox[self.seen :]
        self.seen += len(new)
        for m in new:
            if isinstance(m, ExecuteStep):
                status = self.data.draw(st.sampled_from([StepStatus.SUCCEEDED, StepStatus.FAILED]))
                self.pending.extend(answers(m, status))
            elif isinstance(m, DomainRunCompleted):
                self.pending.append(m)

    async def tick(self, seconds: float) -> None:
        w = self.world
        w.later(seconds)
        mark = StepEventsMark(producer="scheduler", partition=0, occurred_at=w.now)
        await w.scheduler.on_run_events([mark])
        await w.scheduler.fire_due_timers()
        self.react()

    async def run(self) -> None:
        w = self.world
        await w.apply(UPSTREAM, DOWNSTREAM)
        await w.scheduler.mark_step_events()
        first, second = start("a", "chain"), start("a", "chain")
        self.pending += [first, second]
        self.commanded = {first.order_run_id, second.order_run_id}
        if self.data.draw(st.booleans(), label="cancel"):
            self.pending.append(CancelOrderRun(order_run_id=second.order_run_id, reason="x"))
        for _ in range(self.data.draw(st.integers(0, 60), label="steps")):
            if self.pending and self.data.draw(st.integers(0, 4)):
                i = self.data.draw(st.integers(0, len(self.pending) - 1))
                m = self.pending[i] if self.data.draw(st.booleans()) else self.pending.pop(i)
                await self.deliver(m)
            else:
                await self.tick(self.data.draw(st.sampled_from([1, 5, 30, 120])))
        # Then everything still in flight arrives, and time passes until all is quiet.
        for _ in range(50):
            while self.pending:
                await self.deliver(self.pending.pop(0))
            await self.tick(120)
            if not self.pending:
                break


def check(s: Scenario) -> None:
    w = s.world
    attempts = Counter((e.order_run_id, e.step, e.attempt) for e in w.sent(ExecuteStep))
    assert max(attempts.values()) == 1, "an attempt was dispatched twice"
    ends = Counter(e.order_run_id for e in w.sent(OrderRunFinished))
    started = {e.order_run_id for e in w.sent(OrderRunStarted)}
    assert started | s.commanded <= set(ends), "every run ends (one cancelled while queued too)"
    assert max(ends.values()) == 1, "a run ended twice"
    fired: Counter[Any] = Counter()
    for run_id in started | set(ends):
        state = w.tables.runs[run_id].state
        if state.domain == "b":
            assert state.cause is not None
            fired.update((state.cause.trigger, u) for u in state.cause.upstream_message_ids)
    assert all(n == 1 for n in fired.values()), "a trigger fired twice for one message"
    assert {u for _, u in fired} == s.completions, "every completion fired its trigger"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_use_cases_hold_under_duplicates_reorders_and_timers(data: st.DataObject) -> None:
    scenario = Scenario(data)
    asyncio.run(scenario.run())
    check(scenario)


async def _limited(s: Scenario, policy: str) -> None:
    """Six runs of a variation limited to two at once; after every input, the slots hold."""
    w = s.world
    limited = recipe(
        "c",
        "limited",
        {"one": NOOP, "two": {**NOOP, "needs": ["one"]}},
        concurrency={"limit": LIMIT, "policy": policy},
    )
    await w.apply(limited)
    await w.scheduler.mark_step_events()
    commands = [start("c", "limited") for _ in range(6)]
    s.pending += commands
    s.commanded = {c.order_run_id for c in commands}
    for c in commands:
        if s.data.draw(st.booleans(), label="cancel"):
            s.pending.append(CancelOrderRun(order_run_id=c.order_run_id, reason="x"))
    for _ in range(s.data.draw(st.integers(0, 80), label="steps")):
        if s.pending and s.data.draw(st.integers(0, 4)):
            i = s.data.draw(st.integers(0, len(s.pending) - 1))
            await s.deliver(s.pending[i] if s.data.draw(st.booleans()) else s.pending.pop(i))
        else:
            await s.tick(s.data.draw(st.sampled_from([1, 30])))
        slots_hold(w, policy)
    for _ in range(50):
        while s.pending:
            await s.deliver(s.pending.pop(0))
            slots_hold(w, policy)
        await s.tick(120)
        if not s.pending:
            break


LIMIT = 2


def slots_hold(w: World, policy: str) -> None:
    phases = Counter(r.state.phase for r in w.tables.runs.values())
    running, queued = phases[RunPhase.RUNNING], phases[RunPhase.QUEUED]
    assert running <= LIMIT, f"{running} running over the limit of {LIMIT}"
    if policy == "queue" and queued:
        assert running == LIMIT, f"a slot was lost: {running} running, {queued} queued"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from(["queue", "cancel-new", "cancel-running"]))
def test_a_limited_variation_never_runs_over_its_limit_nor_loses_a_slot(
    data: st.DataObject, policy: str
) -> None:
    scenario = Scenario(data)
    asyncio.run(_limited(scenario, policy))
    w = scenario.world
    ends = Counter(e.order_run_id for e in w.sent(OrderRunFinished))
    assert scenario.commanded <= set(ends), "every run ends, queued, refused or cancelled"
    assert max(ends.values()) == 1, "a run ended twice"
