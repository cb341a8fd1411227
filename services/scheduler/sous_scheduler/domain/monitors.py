"""Monitors: which check is due, the RunTests of a check, and whether a trigger may fire.

Pure functions of the specs, the monitors' latest results and the values passed in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sous_contracts.runs import DomainRunCompleted
from sous_contracts.specs import DomainSpec, MonitorSpec, RecipeSpec
from sous_contracts.specs.placeholders import substitute
from sous_contracts.tests import RunTests, TestDefinition
from sous_scheduler.domain.events import Context
from sous_scheduler.domain.params import ParamError
from sous_scheduler.domain.triggers import matches

RECIPE = "monitors"
"""The `recipe` of a monitor's RunTests and results (their `step` is the monitor's name)."""


@dataclass(frozen=True)
class Monitor:
    """A monitor of a domain, as the registry holds it."""

    domain: str
    name: str
    spec: MonitorSpec

    @property
    def monitor_id(self) -> str:
        """`domain/name`."""
        return f"{self.domain}/{self.name}"

    @property
    def schedule_id(self) -> str:
        """The key of its cron fires (beside those of variations)."""
        return f"monitor:{self.domain}/{self.name}@{self.spec.kitchen}"


def monitors_of(domains: Iterable[tuple[str, DomainSpec]]) -> list[Monitor]:
    """Every monitor of these domains."""
    return [Monitor(d, n, m) for d, spec in domains for n, m in sorted(spec.monitors.items())]


def listening(monitors: Iterable[Monitor], event: DomainRunCompleted) -> list[Monitor]:
    """Monitors that run when this upstream run completes (in their own kitchen)."""
    return [
        m
        for m in monitors
        if m.spec.on is not None and m.spec.kitchen == event.kitchen and matches(m.spec.on, event)
    ]


def dataset_of(monitor: MonitorSpec, params: Mapping[str, Any]) -> str:
    """The watched dataset with `${params.x}` resolved (raises ParamError)."""
    return str(substitute(monitor.dataset, {"params": dict(params)}))


def check_command(
    monitor: Monitor,
    *,
    params: Mapping[str, Any],
    connections: Mapping[str, str],
    check_id: uuid.UUID,
    ctx: Context,
    causation: DomainRunCompleted | None = None,
) -> RunTests:
    """The RunTests of one check of a monitor (raises ParamError when a value is missing).

    The check id stands for the run and step ids; an upstream event that caused the check
    keeps its correlation.
    """
    values = {"params": dict(params)}
    tests = [
        TestDefinition(
            name=t.name,
            kind=t.check.kind,
            check=substitute(t.check.model_dump(mode="json"), values),
            severity=t.severity,
            timeout_s=t.timeout or 60.0,
        )
        for t in monitor.spec.tests
    ]
    named = dict(connections)
    if monitor.spec.connection is not None:
        if monitor.spec.connection not in named:
            raise ParamError(f"unknown connection '{monitor.spec.connection}'")
        named["default"] = named[monitor.spec.connection]
    caused: dict[str, Any] = {"producer": "scheduler", "correlation_id": check_id}
    if causation is not None:
        caused = causation.caused(producer="scheduler")
    return RunTests(
        **caused,
        message_id=ctx.new_id(),
        occurred_at=ctx.now,
        order_run_id=check_id,
        step_run_id=check_id,
        step=monitor.name,
        suite_id=check_id,
        domain=monitor.domain,
        recipe=RECIPE,
        kitchen=monitor.spec.kitchen,
        tests=tests,
        params=dict(params),
        connections=named,
        monitor=monitor.name,
        dataset=dataset_of(monitor.spec, params),
    )


def written(recipe: RecipeSpec, event: DomainRunCompleted) -> list[str]:
    """Datasets an upstream run wrote: declared outputs of its steps, and those it reported.

    Declared outputs take the run's params; one whose params do not resolve is left out.
    """
    out: list[str] = []
    for step in recipe.steps.values():
        for name in step.outputs:
            try:
                out.append(str(substitute(name, {"params": event.params})))
            except ParamError:
                continue
    out += [d.uri for d in event.outputs.datasets]
    return sorted(set(out))


@dataclass(frozen=True)
class Health:
    """The latest result of one monitor in one kitchen."""

    dataset: str
    passed: bool
    failed_tests: list[str] = field(default_factory=list)


def hold_reason(
    datasets: Iterable[str], watching: Mapping[str, str], health: Mapping[str, Health]
) -> str | None:
    """Why a `require: monitors_pass` trigger may not fire now, or None when it may.

    `watching` maps each monitor of the kitchen (`domain/name`) to the dataset it watches,
    params resolved; `health` holds their latest results. Every monitor of every dataset
    must have passed its latest check.
    """
    wanted = set(datasets)
    reasons: list[str] = []
    for monitor_id, dataset in sorted(watching.items()):
        if dataset not in wanted:
            continue
        h = health.get(monitor_id)
        if h is None:
            reasons.append(f"monitor {monitor_id} on {dataset} has no result yet")
        elif not h.passed:
            failed = ", ".join(h.failed_tests) or "a test"
            reasons.append(f"monitor {monitor_id} on {dataset} failed ({failed})")
    return "; ".join(reasons) or None
