"""Step conditions: every apply-time refusal with its message, and evaluation."""

from __future__ import annotations

import pytest

from sous_common.conditions import ConditionError, check, evaluate, references

PARAMS = {"full_refresh": "boolean", "day": "string", "n": "integer", "sample": "number"}
NEEDS = ["ingest"]


@pytest.mark.parametrize(
    "source",
    [
        "steps.ingest.outputs.rows > 0 && params.full_refresh == false",
        "steps.ingest.tests.failed == 0 && steps.ingest.status == 'succeeded'",
        "event.params.day == params.day || run.kitchen == 'prod'",
        "has(event.params.day)",
        "params.day.startsWith('2026')",
        "[1, 2].exists(i, i > params.n)",
        "params.sample < 0.5",
    ],
)
def test_a_sound_condition_passes(source: str) -> None:
    assert check(source, params=PARAMS, needs=NEEDS) == []


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (
            "stepz.ingest.outputs.rows > 0",
            "unknown name 'stepz' (names: params, steps, event, run)",
        ),
        (
            "steps.load.outputs.rows > 0",
            "unknown step 'load': a condition reads only the steps it needs (needs: ingest)",
        ),
        ("params.nope == 1", "unknown param 'nope' (params: day, full_refresh, n, sample)"),
        (
            "steps.ingest.rows > 0",
            "unknown name 'steps.ingest.rows' (a step has: outputs, tests, status)",
        ),
        (
            "steps.ingest.tests.broken == 0",
            "unknown name 'steps.ingest.tests.broken' "
            "(test counts: passed, failed, warnings, errors, logged)",
        ),
        (
            "run.owner == 'x'",
            "unknown name 'run.owner' (run has: id, domain, recipe, variation, kitchen)",
        ),
        (
            "event.when == 'x'",
            "unknown name 'event.when' (event has: domain, recipe, variation, kitchen, status, "
            "params, outputs, order_run_id)",
        ),
        ("[1].exists(i, j > 0)", "unknown name 'j' (names: params, steps, event, run)"),
        ("params.day > 3", "type error: '>' does not apply to string and int"),
        # The other side of && is false: evaluated whole, the error would hide behind it.
        ("false && params.day > 3", "type error: '>' does not apply to string and int"),
        ("params.n + params.day == 1", "type error: '+' does not apply to int and string"),
        ("params.n + 1", "must be a boolean, got int"),
        ("params.n >", "does not parse: params.n > ^"),
    ],
)
def test_a_faulty_condition_is_refused_with_its_reason(source: str, reason: str) -> None:
    assert check(source, params=PARAMS, needs=NEEDS) == [reason]


def test_references_are_dotted_names_without_comprehension_variables() -> None:
    assert references("steps.a.outputs.rows > 0 && [1].all(x, x < params.n)") == [
        ("steps", "a", "outputs", "rows"),
        ("params", "n"),
    ]


def test_evaluate_gives_the_value_and_what_it_saw() -> None:
    values = {"steps": {"ingest": {"outputs": {"rows": 0}}}, "params": {"full_refresh": False}}
    verdict = evaluate("steps.ingest.outputs.rows > 0 && params.full_refresh == false", values)
    assert verdict.value is False
    assert verdict.seen == {"steps.ingest.outputs.rows": 0, "params.full_refresh": False}


def test_a_missing_output_is_an_evaluation_error() -> None:
    with pytest.raises(ConditionError, match="no such member in mapping: 'rows'"):
        evaluate("steps.ingest.outputs.rows > 0", {"steps": {"ingest": {"outputs": {}}}})


def test_a_non_boolean_result_is_an_evaluation_error() -> None:
    with pytest.raises(ConditionError, match="must give a boolean"):
        evaluate("params.n", {"params": {"n": 3}})
