"""The chaos checker finds each broken promise: one healthy history, then one fault at a time.

The chaos tier passes only when the checker finds nothing, so each of its checks must be able
to find something: every case below breaks exactly one promise in an otherwise healthy run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from sous_contracts.runs import (
    DomainRunCompleted,
    OrderRunFinished,
    OrderRunStarted,
    StartOrderRun,
)
from sous_contracts.steps import StepStarted
from tests.chaos.invariants import Evidence, judge

NOW = datetime(2026, 12, 2, tzinfo=UTC)
A, B, C, D = (uuid.uuid4() for _ in range(4))
DOMAINS = {A: "a", B: "b", C: "c", D: "d"}
STEP = {"a": "load", "b": "copy", "c": "load", "d": "merge"}
SHELL_STEP = uuid.uuid4()


def _started(run: uuid.UUID, **params: str) -> OrderRunStarted:
    domain = DOMAINS.get(run, "b")
    return OrderRunStarted(
        order_run_id=run,
        domain=domain,
        recipe="r",
        variation="default",
        kitchen="dev",
        params=params,
        occurred_at=NOW,
    )


def _finished(run: uuid.UUID, status: str = "succeeded") -> OrderRunFinished:
    return OrderRunFinished(
        order_run_id=run,
        domain=DOMAINS.get(run, "b"),
        recipe="r",
        variation="default",
        kitchen="dev",
        status=status,
        occurred_at=NOW,
    )


def _completed(run: uuid.UUID) -> DomainRunCompleted:
    return DomainRunCompleted(
        order_run_id=run,
        domain=DOMAINS.get(run, "b"),
        recipe="r",
        kitchen="dev",
        status="succeeded",
        occurred_at=NOW,
    )


def _command(run: uuid.UUID) -> StartOrderRun:
    return StartOrderRun(order_run_id=run, domain=DOMAINS[run], recipe="r", occurred_at=NOW)


def healthy() -> tuple[Evidence, list[StartOrderRun]]:
    """a and c started by commands; b follows a, d joins a and c; all succeeded once."""
    params = {B: {"upstream": str(A)}}
    messages: list = []
    for run in (A, C, B, D):
        messages += [_started(run, **params.get(run, {})), _finished(run), _completed(run)]
    messages.append(
        StepStarted(
            order_run_id=A,
            step_run_id=SHELL_STEP,
            step="shell",
            attempt=1,
            worker_id="w",
            occurred_at=NOW,
        )
    )
    evidence = Evidence(
        messages=messages,
        runs=[{"id": run, "domain": DOMAINS[run], "phase": "succeeded"} for run in DOMAINS],
        firings=[
            {"trigger_id": "b/follow#0", "upstream_message_id": uuid.uuid4(), "order_run_id": B},
            {"trigger_id": "d/join#0", "upstream_message_id": uuid.uuid4(), "order_run_id": D},
        ],
        effects={(run, STEP[DOMAINS[run]]): 1 for run in DOMAINS},
        shell_lines=[f"{SHELL_STEP} 1"],
    )
    return evidence, [_command(A), _command(C)]


def _without(evidence: Evidence, run: uuid.UUID) -> Evidence:
    return replace(
        evidence,
        messages=[m for m in evidence.messages if getattr(m, "order_run_id", None) != run],
        runs=[r for r in evidence.runs if r["id"] != run],
        firings=[f for f in evidence.firings if f["order_run_id"] != run],
        effects={k: n for k, n in evidence.effects.items() if k[0] != run},
    )


def _unfinished(evidence: Evidence, run: uuid.UUID) -> Evidence:
    kept = [
        m
        for m in evidence.messages
        if not (isinstance(m, OrderRunFinished) and m.order_run_id == run)
    ]
    return replace(evidence, messages=kept)


def _more(evidence: Evidence, *messages: object) -> Evidence:
    return replace(evidence, messages=[*evidence.messages, *messages])


Fault = Callable[[Evidence, list], tuple[Evidence, list]]
E = uuid.uuid4()
FAULTS: dict[str, tuple[Fault, str]] = {
    "a command is lost": (
        lambda e, s: (e, [*s, StartOrderRun(order_run_id=E, domain="a", recipe="r")]),
        "neither started nor rejected",
    ),
    "a run ends twice": (lambda e, s: (_more(e, _finished(A)), s), f"run {A} (a/r) ended 2 times"),
    "a run never ends": (
        lambda e, s: (
            replace(
                e,
                messages=[
                    m
                    for m in e.messages
                    if not (isinstance(m, OrderRunFinished) and m.order_run_id == C)
                ],
            ),
            s,
        ),
        f"run {C} (c/r) ended 0 times",
    ),
    "a run ends that never started": (
        lambda e, s: (_more(e, _finished(E)), s),
        "finished that never started",
    ),
    "a run is stuck": (
        lambda e, s: (replace(e, runs=[*e.runs, {"id": E, "domain": "a", "phase": "running"}]), s),
        "runs left non-final",
    ),
    "two completions of one run": (
        lambda e, s: (_more(e, _completed(A)), s),
        f"run {A} published 2 different completions",
    ),
    "a sql step writes twice": (
        lambda e, s: (replace(e, effects={**e.effects, (C, "load"): 2}), s),
        f"sql step c/load of run {C} took effect 2 times",
    ),
    "a succeeded sql step wrote nothing": (
        lambda e, s: (replace(e, effects={k: n for k, n in e.effects.items() if k[0] != D}), s),
        f"sql step d/merge of run {D} took effect 0 times",
    ),
    "a shell attempt runs twice": (
        lambda e, s: (replace(e, shell_lines=[*e.shell_lines, f"{SHELL_STEP} 1"]), s),
        "shell attempts executed more than once",
    ),
    "a shell attempt runs untaken": (
        lambda e, s: (replace(e, shell_lines=[*e.shell_lines, f"{SHELL_STEP} 2"]), s),
        "executed without a StepStarted",
    ),
    "a trigger firing is lost": (lambda e, s: (_without(e, B), s), f"a run {A} started 0 b/follow"),
    "a trigger fires twice": (
        lambda e, s: (_more(e, _started(E, upstream=str(A)), _finished(E)), s),
        f"a run {A} started 2 b/follow runs",
    ),
    "a downstream run without upstream": (
        lambda e, s: (_more(e, _started(E, upstream=str(uuid.uuid4())), _finished(E)), s),
        "b/follow runs with no succeeded upstream",
    ),
    "one run for two firings": (
        lambda e, s: (replace(e, firings=[*e.firings, {**e.firings[0], "trigger_id": "x#0"}]), s),
        "one downstream run recorded for several firings",
    ),
    "a join fires without a record": (
        lambda e, s: (replace(e, firings=e.firings[:1]), s),
        "d/join runs 1 differ from the join's firings 0",
    ),
    "the join never fires": (lambda e, s: (_without(e, D), s), "the a+c join never fired"),
}


def test_a_healthy_history_breaks_no_promise() -> None:
    evidence, sent = healthy()
    report = judge(evidence, sent)
    assert report.violations == []
    assert report.figures["runs"] == 4
    assert report.figures["trigger_firings"] == 2


@pytest.mark.parametrize("fault", FAULTS)
def test_each_broken_promise_is_found(fault: str) -> None:
    breaking, expected = FAULTS[fault]
    report = judge(*breaking(*healthy()))
    assert any(expected in v for v in report.violations), report.violations
