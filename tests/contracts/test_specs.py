"""Spec models: the DESIGN example parses; mistakes are refused naming where and why."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sous_contracts.specs import RecipeSpec, TriggerSpec, parse_duration
from sous_contracts.specs.yamlload import load_yaml

REVENUE = """
recipe: revenue
params: {day: {required: true}, target_schema: {default: finance}}
triggers:
  - on: {domain: sales, recipe: daily}
    variation: prod
    params: {day: "${event.params.day}"}
  - all: [{domain: sales, recipe: daily}, {domain: payments, recipe: settle}]
    within: 6h
    variation: prod
steps:
  fx:      {recipe: finance/fx_rates}
  load:    {needs: [fx], run: {kind: sql, connection: warehouse, file: sql/load.sql},
            timeout: 10m, retries: {max: 3, backoff: 10s},
            tests: [{name: rows, check: {kind: metric, output: rows, op: ">", value: 0},
                     severity: error}]}
  publish: {needs: [load], use: platform/publish_table@2, with: {table: revenue}}
variations:
  prod:   {kitchen: prod, schedule: "0 3 * * *"}
  canary: {kitchen: prod, params: {sample: 0.1}}
"""


def test_design_example_parses() -> None:
    spec = RecipeSpec.model_validate(load_yaml(REVENUE))
    assert spec.steps["load"].timeout == 600
    assert spec.steps["load"].retries.backoff == 10
    assert spec.triggers[1].within == 6 * 3600
    assert spec.variations["prod"].schedule is not None
    assert spec.variations["prod"].schedule.cron == "0 3 * * *"
    assert spec.steps["publish"].with_ == {"table": "revenue"}


def _error(doc: dict) -> str:
    with pytest.raises(ValidationError) as info:
        RecipeSpec.model_validate(doc)
    return str(info.value)


def test_on_stays_a_key_and_yes_stays_a_string() -> None:
    assert load_yaml("on: yes\nflag: true") == {"on": "yes", "flag": True}


def test_typo_in_a_key_is_refused() -> None:
    doc = load_yaml(REVENUE)
    doc["steps"]["load"]["timout"] = "5m"
    assert "steps.load.timout" in _error(doc)


def test_step_with_two_actions_is_refused() -> None:
    doc = load_yaml(REVENUE)
    doc["steps"]["fx"]["run"] = {"kind": "noop"}
    assert "exactly one of 'run', 'recipe' or 'use'" in _error(doc)


def test_unknown_test_kind_is_refused() -> None:
    doc = load_yaml(REVENUE)
    doc["steps"]["load"]["tests"][0]["check"]["kind"] = "vibes"
    message = _error(doc)
    assert "steps.load.tests.0.check" in message
    assert "vibes" in message


def test_unpinned_ingredient_is_refused() -> None:
    doc = load_yaml(REVENUE)
    doc["steps"]["publish"]["use"] = "platform/publish_table"
    assert "steps.publish.use" in _error(doc)


@pytest.mark.parametrize(
    ("trigger", "words"),
    [
        ({"variation": "prod"}, "exactly one of 'on', 'all'"),
        ({"all": [{"domain": "a"}], "variation": "prod"}, "needs a 'within' window"),
        ({"on": {"domain": "a"}, "variation": "prod", "allow_cycle": True}, "needs 'max_depth'"),
    ],
)
def test_trigger_rules(trigger: dict, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        TriggerSpec.model_validate(trigger)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), (90, 90), ("250ms", 0.25), ("10m", 600), ("1d", 86400)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration_says_what_is_expected() -> None:
    with pytest.raises(ValueError, match="expected a duration such as 30s"):
        parse_duration("soon")
