"""Registry commands and the changelog records of `sous.registry.changelog`."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import Field

from sous_contracts.envelope import Envelope


class EntityKind(StrEnum):
    """Kinds of registry entity on the changelog."""

    DOMAIN = "domain"
    KITCHEN = "kitchen"
    RECIPE = "recipe"
    INGREDIENT = "ingredient"
    CONNECTION = "connection"
    GRANT = "grant"


class ApplySpecs(Envelope):
    """Command: apply a bundle of spec files (as `sous apply` does), all or nothing."""

    KEY_FIELD: ClassVar[str] = "bundle_id"

    type: Literal["ApplySpecs"] = "ApplySpecs"
    bundle_id: str
    """Caller-chosen id of the bundle; repeats are applied once."""
    files: dict[str, str]
    """Relative path → YAML text."""
    kitchen: str | None = None
    """Apply into this kitchen's overrides instead of the base specs."""
    principal: str | None = None
    """Who applies."""


class RegistryEntityChanged(Envelope):
    """Changelog record: the current version of one entity.

    The topic is compacted on `entity_id`, so reading it from the start gives the
    registry's whole present state; a deleted entity keeps a record with `deleted`.
    """

    KEY_FIELD: ClassVar[str] = "entity_id"

    type: Literal["RegistryEntityChanged"] = "RegistryEntityChanged"
    entity_id: str
    """Stable key: `kind:domain/name`, e.g. `recipe:sales/daily`."""
    kind: EntityKind
    """Kind of entity."""
    domain: str | None = None
    """Owning domain (None for kitchens, which the mesh shares)."""
    name: str
    """Entity name."""
    version: str
    """Content hash of the spec (`sha256:…`)."""
    spec: dict[str, Any] = Field(default_factory=dict)
    """The validated spec, as JSON."""
    deleted: bool = False
    """True when the entity was removed."""
    changed_by: str | None = None
    """Principal who made the change."""
    kitchen: str | None = None
    """Kitchen this version applies in; None for every kitchen without a version of its own."""
