"""Stored run states across versions: a state a newer replica saved still loads."""

from __future__ import annotations

import json
import uuid

import pytest
from pydantic import ValidationError

from sous_scheduler.domain.state import RunPhase, RunState, StepPhase, StepState

STATE = RunState(
    order_run_id=uuid.UUID(int=1),
    domain="a",
    recipe="r",
    variation="prod",
    kitchen="prod",
    phase=RunPhase.RUNNING,
    steps={"x": StepState(name="x", step_run_id=uuid.UUID(int=2), phase=StepPhase.RUNNING)},
)


def newer(state: RunState) -> str:
    """The state as a newer version saves it: new fields on the run, a step and its outputs."""
    stored = json.loads(state.model_dump_json())
    stored["priority"] = 5
    stored["steps"]["x"]["cost"] = {"cpu_s": 1.5}
    stored["steps"]["x"]["outputs"]["lineage"] = ["db.t"]
    return json.dumps(stored)


def test_a_state_with_fields_this_version_does_not_know_loads() -> None:
    assert RunState.load(newer(STATE)) == STATE


def test_a_state_of_this_version_round_trips() -> None:
    assert RunState.load(STATE.model_dump_json()) == STATE


def test_a_state_built_in_code_still_refuses_an_unknown_field() -> None:
    with pytest.raises(ValidationError, match="priority"):
        RunState(**STATE.model_dump(), priority=5)
    with pytest.raises(ValidationError, match="phase"):
        RunState.load(STATE.model_dump_json().replace('"running"', '"sleeping"', 1))
