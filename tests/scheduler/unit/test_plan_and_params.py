"""Planning a run: variations, kitchens, params layering, with precise refusals."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

import pytest

from sous_contracts.runs import StartOrderRun
from sous_contracts.specs import DomainSpec, KitchenSpec, RecipeSpec
from sous_contracts.specs.placeholders import substitute
from sous_scheduler.domain.params import ParamError, resolve_params
from sous_scheduler.domain.plan import Catalog, Rejected, plan_run

RECIPE = RecipeSpec.model_validate(
    {
        "recipe": "daily",
        "params": {
            "day": {"type": "date", "required": True},
            "limit": {"type": "integer", "default": 10},
            "target": {"default": "prod_schema"},
        },
        "steps": {"a": {"run": {"kind": "noop"}}},
        "variations": {
            "prod": {"kitchen": "prod"},
            "dev": {"kitchen": "dev", "params": {"limit": 2}},
        },
    }
)
DOMAIN = DomainSpec.model_validate(
    {
        "domain": "sales",
        "connections": {"warehouse": {"ref": "env:WAREHOUSE"}},
        "kitchens": {
            "dev": {
                "params": {"target": "dev_schema"},
                "connections": {"warehouse": {"ref": "env:DEV_WAREHOUSE"}},
            }
        },
    }
)
KITCHENS = {
    "prod": KitchenSpec(kitchen="prod", params={"limit": 1000}),
    "dev": KitchenSpec(kitchen="dev", parent="prod"),
}
CATALOG = Catalog(RECIPE, "sha256:1", DOMAIN, KITCHENS)


def plan(**fields):
    ids = itertools.count(1)
    cmd = StartOrderRun(order_run_id=uuid.uuid4(), domain="sales", recipe="daily", **fields)
    return plan_run(cmd, CATALOG, now=datetime.now(UTC), new_id=lambda: uuid.UUID(int=next(ids)))


def test_layers_recipe_kitchen_variation_command() -> None:
    run = plan(variation="dev", params={"day": "2026-02-03"})
    assert run.kitchen == "dev"
    assert run.params == {"day": "2026-02-03", "limit": 2, "target": "dev_schema"}
    assert run.connections == {"warehouse": "env:DEV_WAREHOUSE"}
    prod = plan(variation="prod", params={"day": "2026-02-03", "limit": "7"})
    assert prod.params["limit"] == 7
    assert prod.connections == {"warehouse": "env:WAREHOUSE"}


def test_the_run_keeps_the_event_that_triggered_it() -> None:
    event = {"domain": "payments", "params": {"day": "2026-01-01"}}
    run = plan(variation="dev", params={"day": "2026-01-01"}, trigger_event=event)
    assert run.trigger_event == event


def test_kitchen_picks_its_variation() -> None:
    assert plan(kitchen="dev", params={"day": "2026-01-01"}).variation == "dev"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (
            {"variation": "nightly"},
            "unknown variation 'nightly' of sales/daily (variations: dev, prod)",
        ),
        ({}, "name a variation or a kitchen"),
        ({"variation": "prod"}, "missing required param(s) ['day']"),
        (
            {"variation": "prod", "params": {"day": "2026-01-01", "dya": 1}},
            "undeclared param(s) ['dya']",
        ),
        ({"variation": "prod", "params": {"day": "someday"}}, "param 'day' must be a date"),
        (
            {"variation": "prod", "params": {"day": "2026-01-01", "limit": True}},
            "param 'limit' must be integer",
        ),
        ({"kitchen": "moon", "params": {"day": "2026-01-01"}}, "unknown kitchen 'moon'"),
    ],
)
def test_refusals_say_why(fields, words) -> None:
    with pytest.raises(Rejected) as info:
        plan(**fields)
    assert words in str(info.value)


def test_unknown_recipe() -> None:
    cmd = StartOrderRun(order_run_id=uuid.uuid4(), domain="sales", recipe="nope")
    with pytest.raises(Rejected, match="unknown recipe sales/nope"):
        plan_run(cmd, Catalog(None, None, None), now=datetime.now(UTC), new_id=uuid.uuid4)


def test_substitute_keeps_types_for_whole_placeholders() -> None:
    ctx = {"params": {"n": 3, "day": "2026-01-01"}, "event": {"outputs": {"rows": 9}}}
    assert substitute(
        {"a": "${params.n}", "b": "day=${params.day}", "c": ["${event.outputs.rows}"]}, ctx
    ) == {"a": 3, "b": "day=2026-01-01", "c": [9]}
    with pytest.raises(ParamError, match="does not resolve"):
        substitute("${params.missing}", ctx)


def test_resolve_params_without_layers_uses_defaults() -> None:
    assert resolve_params(RECIPE.params, {}, {}, {"day": "2026-01-01"})["limit"] == 10
