"""Trigger matching and the command a firing makes: pure functions, table-driven."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sous_contracts.common import Outputs, RunStatus, TestSummary
from sous_contracts.runs import DomainRunCompleted
from sous_contracts.specs import EventMatch, KitchenSpec, TriggerSpec
from sous_scheduler.domain.params import ParamError
from sous_scheduler.domain.triggers import (
    Listener,
    TriggerIndex,
    debounce_over,
    depth_limit,
    held_event,
    join_cutoff,
    join_needed,
    matches,
    matching_patterns,
    start_command,
    too_deep,
)
from tests.scheduler.world import T0, context_at

RUN = uuid.UUID(int=7)
CTX = context_at(T0)


def done(**kw: Any) -> DomainRunCompleted:
    values: dict[str, Any] = {
        "domain": "sales",
        "recipe": "daily",
        "variation": "prod",
        "kitchen": "prod",
        "status": RunStatus.SUCCEEDED,
        "order_run_id": RUN,
        **kw,
    }
    return DomainRunCompleted(**values)


def pattern(**kw: Any) -> EventMatch:
    return EventMatch.model_validate({"domain": "sales", **kw})


@pytest.mark.parametrize(
    ("spec", "event", "expected"),
    [
        ({}, done(), True),
        ({}, done(domain="finance"), False),
        ({"recipe": "daily"}, done(), True),
        ({"recipe": "weekly"}, done(), False),
        ({"variation": "prod"}, done(variation="canary"), False),
        ({"variation": "prod"}, done(variation=None), False),
        ({}, done(variation=None), True),
        ({}, done(kitchen="dev"), True),
        ({"kitchen": "dev"}, done(kitchen="dev"), True),
        ({"kitchen": "dev"}, done(), False),
        ({}, done(status=RunStatus.FAILED), False),
        ({"status": ["failed"]}, done(status=RunStatus.FAILED), True),
        ({"status": ["failed"]}, done(), False),
        ({"status": ["succeeded", "failed"]}, done(status=RunStatus.CANCELLED), False),
    ],
)
def test_a_pattern_matches_on_every_field_it_names(spec, event, expected) -> None:
    assert matches(pattern(**spec), event) is expected


CLEAN = TestSummary(passed=3)
WARNED = TestSummary(passed=2, warnings=1)
FAILED = TestSummary(passed=1, failed=1)
BROKEN = TestSummary(passed=2, errors=1)


@pytest.mark.parametrize(
    ("rule", "summary", "expected"),
    [
        ("no_errors", CLEAN, True),
        ("no_errors", WARNED, True),
        ("no_errors", FAILED, False),
        ("passed", CLEAN, True),
        ("passed", WARNED, False),
        ("passed", FAILED, False),
        ("passed", BROKEN, False),
        ("warnings", CLEAN, False),
        ("warnings", WARNED, True),
        ("errors", CLEAN, False),
        ("errors", FAILED, True),
        ("any", FAILED, True),
        ("any", CLEAN, True),
    ],
)
def test_a_pattern_matches_on_test_outcomes(rule, summary, expected) -> None:
    assert matches(pattern(tests=rule), done(tests=summary)) is expected


def test_the_default_pattern_refuses_a_run_whose_error_tests_failed() -> None:
    assert not matches(pattern(), done(tests=FAILED))


def listener(**trigger: Any) -> Listener:
    spec = TriggerSpec.model_validate({"variation": "prod", **trigger})
    return Listener("finance", "revenue", 0, spec)


@pytest.mark.parametrize(
    ("trigger", "event", "expected"),
    [
        ({"on": {"domain": "sales"}}, done(), [0]),
        ({"on": {"domain": "sales", "recipe": "weekly"}}, done(), []),
        ({"any": [{"domain": "hr"}, {"domain": "sales"}]}, done(), [1]),
        (
            {"all": [{"domain": "sales"}, {"domain": "sales", "recipe": "daily"}], "within": "1h"},
            done(),
            [0, 1],
        ),
        (
            {"at_least": {"n": 2, "of": [{"domain": "hr"}, {"domain": "ops"}]}, "within": "1h"},
            done(),
            [],
        ),
    ],
)
def test_matching_patterns_names_each_pattern_an_event_fits(trigger, event, expected) -> None:
    assert matching_patterns(listener(**trigger), event) == expected


def test_trigger_ids_use_the_name_else_the_position() -> None:
    assert listener(on={"domain": "sales"}).trigger_id == "finance/revenue#0"
    assert listener(on={"domain": "sales"}, name="daily").trigger_id == "finance/revenue#daily"


def test_the_depth_limit_is_the_trigger_s_own_else_the_default() -> None:
    assert depth_limit(listener(on={"domain": "sales"}), 10) == 10
    assert depth_limit(listener(on={"domain": "sales"}, max_depth=3), 10) == 3


def test_a_firing_one_hop_past_the_limit_is_refused_saying_so() -> None:
    three = listener(on={"domain": "sales"}, max_depth=3)
    assert too_deep(three, done(causation_depth=2), 10) is None
    assert too_deep(three, done(causation_depth=3), 10) == "refused: causation depth 4 > limit 3"
    assert too_deep(listener(on={"domain": "sales"}), done(causation_depth=9), 10) is None


def test_a_firing_starts_the_variation_in_the_upstream_kitchen_one_hop_deeper() -> None:
    event = done(
        kitchen="dev",
        params={"day": "2026-01-05"},
        outputs=Outputs(values={"rows": 12}),
        causation_depth=2,
    )
    trigger = listener(
        on={"domain": "sales"}, params={"day": "${event.params.day}", "n": "${event.outputs.rows}"}
    )
    command = start_command(trigger, event, uuid.UUID(int=9), CTX)
    assert (command.domain, command.recipe, command.variation) == ("finance", "revenue", "prod")
    assert command.order_run_id == uuid.UUID(int=9)
    assert command.kitchen == "dev"
    assert command.params == {"day": "2026-01-05", "n": 12}
    assert command.causation_depth == 3
    assert command.causation_id == event.message_id
    assert command.correlation_id == RUN
    # Step conditions of the run read the event as `event`.
    assert command.trigger_event["params"] == {"day": "2026-01-05"}
    assert command.trigger_event["outputs"] == {"rows": 12}


def test_a_firing_crosses_kitchens_only_when_the_trigger_says_so() -> None:
    command = start_command(
        listener(on={"domain": "sales", "kitchen": "dev"}, kitchen="prod"),
        done(kitchen="dev"),
        uuid.UUID(int=9),
        CTX,
    )
    assert command.kitchen == "prod"


def test_a_firing_keeps_the_upstream_correlation() -> None:
    upstream = uuid.UUID(int=5)
    command = start_command(
        listener(on={"domain": "sales"}), done(correlation_id=upstream), uuid.UUID(int=9), CTX
    )
    assert command.correlation_id == upstream


def test_a_placeholder_the_event_cannot_fill_is_an_error() -> None:
    trigger = listener(on={"domain": "sales"}, params={"day": "${event.params.day}"})
    with pytest.raises(ParamError):
        start_command(trigger, done(), uuid.UUID(int=9), CTX)


def versioned(domain: str, recipe: str, version: str) -> list[Listener]:
    """One trigger on sales that says which version it belongs to."""
    spec = {
        "on": {"domain": "sales"},
        "name": "t",
        "variation": "prod",
        "params": {"version": version},
    }
    return [Listener(domain, recipe, 0, TriggerSpec.model_validate(spec))]


SANDBOXES = TriggerIndex(
    {
        ("finance", "revenue"): {
            None: versioned("finance", "revenue", "base"),
            "dev-alice": versioned("finance", "revenue", "alice"),
        },
        # The sandbox's version dropped the trigger; the base still has it.
        ("finance", "audit"): {None: versioned("finance", "audit", "base"), "dev-alice": []},
        ("lab", "trial"): {"dev-alice": versioned("lab", "trial", "alice")},  # sandbox only
    },
    {
        "prod": KitchenSpec(kitchen="prod"),
        "dev": KitchenSpec(kitchen="dev", parent="prod"),
        "dev-alice": KitchenSpec(kitchen="dev-alice", parent="dev"),
        "dev-alice-2": KitchenSpec(kitchen="dev-alice-2", parent="dev-alice"),
    },
)


@pytest.mark.parametrize(
    ("kitchen", "expected"),
    [
        ("dev-alice", {"finance/revenue": "alice", "lab/trial": "alice"}),
        ("dev-alice-2", {"finance/revenue": "alice", "lab/trial": "alice"}),
        ("dev", {"finance/revenue": "base", "finance/audit": "base"}),
        ("prod", {"finance/revenue": "base", "finance/audit": "base"}),
        ("elsewhere", {"finance/revenue": "base", "finance/audit": "base"}),
    ],
)
def test_a_kitchen_listens_with_the_versions_it_runs_one_per_recipe(kitchen, expected) -> None:
    found = SANDBOXES.listening("sales", kitchen)
    got = {f"{x.domain}/{x.recipe}": x.trigger.params["version"] for x in found}
    assert got == expected
    assert len(found) == len(expected), "one version of a recipe answers an event"
    assert SANDBOXES.listening("payments", kitchen) == []


def test_a_trigger_id_resolves_to_the_version_of_its_kitchen() -> None:
    def version(trigger_id: str, kitchen: str) -> str | None:
        found = SANDBOXES.listener(trigger_id, kitchen)
        return None if found is None else found.trigger.params["version"]

    assert version("finance/revenue#t", "dev-alice-2") == "alice"
    assert version("finance/revenue#t", "dev") == "base"
    assert version("finance/audit#t", "dev") == "base"
    assert SANDBOXES.listener("finance/audit#t", "dev-alice") is None
    assert SANDBOXES.listener("lab/trial#t", "prod") is None


def test_join_windows_and_debounce() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    all_of = TriggerSpec.model_validate(
        {"all": [{"domain": "a"}, {"domain": "b"}], "within": "10m", "variation": "prod"}
    )
    some = TriggerSpec.model_validate(
        {
            "at_least": {"n": 2, "of": [{"domain": "a"}, {"domain": "b"}, {"domain": "c"}]},
            "within": "1h",
            "variation": "prod",
        }
    )
    assert join_needed(all_of) == 2
    assert join_needed(some) == 2
    assert join_cutoff(all_of, now) == now - timedelta(minutes=10)
    quiet = TriggerSpec.model_validate(
        {"on": {"domain": "a"}, "mode": "coalesce", "debounce": "30s", "variation": "prod"}
    )
    assert not debounce_over(quiet, now - timedelta(seconds=29), now)
    assert debounce_over(quiet, now - timedelta(seconds=30), now)


def test_what_a_firing_sends_depends_on_its_context_alone() -> None:
    """Ids and times come from the context: the same input and context give equal messages."""
    trigger, event = listener(on={"domain": "sales"}), done()
    a, b = context_at(T0), context_at(T0)
    assert start_command(trigger, event, RUN, a) == start_command(trigger, event, RUN, b)
    held = [held_event(trigger, event, RUN, ["wh.t"], "held: fresh", c) for c in (a, b)]
    assert held[0] == held[1]
    assert held[0].occurred_at == T0
    later = start_command(trigger, event, RUN, context_at(T0 + timedelta(seconds=1)))
    assert later.occurred_at == T0 + timedelta(seconds=1)
