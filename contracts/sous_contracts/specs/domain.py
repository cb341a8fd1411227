"""Spec models of domains and kitchens."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import Field, model_validator

from sous_contracts.specs.common import ConnectionSpec, Duration, RecipeRef, Spec, SpecName
from sous_contracts.specs.recipe import EventMatch, ScheduleSpec, schedule_shorthand
from sous_contracts.specs.steps import DatasetName
from sous_contracts.specs.tests import TestSpec


class KitchenOverride(Spec):
    """What a domain changes in one kitchen."""

    params: dict[str, Any] = Field(default_factory=dict)
    """Parameter values in that kitchen."""
    connections: dict[SpecName, ConnectionSpec] = Field(default_factory=dict)
    """Connections replaced in that kitchen."""


class MonitorSpec(Spec):
    """Tests that watch a dataset on their own, without a pipeline run."""

    dataset: DatasetName
    """Dataset watched, e.g. `finance.revenue`; may use `${params.x}` (kitchen params)."""
    kitchen: SpecName = "prod"
    """Kitchen whose connections and params the tests use."""
    connection: SpecName | None = None
    """Connection of tests that name none."""
    schedule: Annotated[ScheduleSpec | None, Field(default=None)] = None
    """Cron schedule; a plain string is the cron expression."""
    on: EventMatch | None = None
    """Run when a matching upstream run completes (same shape as a trigger's `on`)."""
    tests: list[TestSpec] = Field(min_length=1)
    """The same test definitions as step tests; steps may reuse them by name."""

    @model_validator(mode="before")
    @classmethod
    def _schedule_shorthand(cls, data: Any) -> Any:
        return schedule_shorthand(data)

    @model_validator(mode="after")
    def _one_start(self) -> Self:
        if (self.schedule is None) == (self.on is None):
            raise ValueError("a monitor needs exactly one of 'schedule' or 'on'")
        names = [t.name for t in self.tests]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"test names repeat within the monitor: {dupes}")
        return self


class DomainSpec(Spec):
    """A team-owned area of the mesh (`domain.yaml`)."""

    domain: SpecName
    """Domain name."""
    description: str = ""
    """What the domain is for."""
    owners: list[str] = Field(default_factory=list)
    """People or teams who own it."""
    connections: dict[SpecName, ConnectionSpec] = Field(default_factory=dict)
    """Named connections."""
    kitchens: dict[SpecName, KitchenOverride] = Field(default_factory=dict)
    """Per-kitchen overrides."""
    publishes: list[str] = Field(default_factory=list)
    """Datasets the domain publishes for others (data linkage)."""
    monitors: dict[SpecName, MonitorSpec] = Field(default_factory=dict)
    """Monitors by name: tests that watch a dataset on a schedule or after an upstream run."""


class KitchenSpec(Spec):
    """An environment: prod, dev, or a sandbox made from a parent (`kitchens/<name>.yaml`)."""

    kitchen: SpecName
    """Kitchen name."""
    parent: SpecName | None = None
    """Kitchen it inherits params and connections from."""
    description: str = ""
    """What it is for."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Parameter overrides."""
    connections: dict[SpecName, ConnectionSpec] = Field(default_factory=dict)
    """Connection overrides."""
    ttl: Duration | None = None
    """Sandbox lifetime; deleted after it."""
    provision: RecipeRef | None = None
    """Recipe run when the kitchen is created."""
    teardown: RecipeRef | None = None
    """Recipe run before it is deleted."""
