"""Recipes as code: the pydantic models of the domain YAML, and their JSON Schema."""

from pydantic import BaseModel

from sous_contracts.specs.common import ConnectionSpec, ParamSpec, parse_duration
from sous_contracts.specs.domain import DomainSpec, KitchenOverride, KitchenSpec, MonitorSpec
from sous_contracts.specs.recipe import (
    AtLeast,
    ConcurrencySpec,
    EventMatch,
    IngredientSpec,
    RecipeSpec,
    ScheduleSpec,
    TriggerSpec,
    VariationSpec,
)
from sous_contracts.specs.steps import Retries, StepSpec
from sous_contracts.specs.tests import TestSpec

SPEC_DOCUMENTS: dict[str, type[BaseModel]] = {
    "domain": DomainSpec,
    "kitchen": KitchenSpec,
    "recipe": RecipeSpec,
    "ingredient": IngredientSpec,
}
"""The top-level key of a YAML document → its model."""

__all__ = [
    "SPEC_DOCUMENTS",
    "AtLeast",
    "ConcurrencySpec",
    "ConnectionSpec",
    "DomainSpec",
    "EventMatch",
    "IngredientSpec",
    "KitchenOverride",
    "KitchenSpec",
    "MonitorSpec",
    "ParamSpec",
    "RecipeSpec",
    "Retries",
    "ScheduleSpec",
    "StepSpec",
    "TestSpec",
    "TriggerSpec",
    "VariationSpec",
    "parse_duration",
]
