"""Spec models of domains and kitchens."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sous_contracts.specs.common import ConnectionSpec, Duration, RecipeRef, Spec, SpecName


class KitchenOverride(Spec):
    """What a domain changes in one kitchen."""

    params: dict[str, Any] = Field(default_factory=dict)
    """Parameter values in that kitchen."""
    connections: dict[SpecName, ConnectionSpec] = Field(default_factory=dict)
    """Connections replaced in that kitchen."""


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
