"""The cache of run states keeps the runs still going, newest last, within its size."""

from __future__ import annotations

import uuid

from sous_contracts.specs import RecipeSpec
from sous_scheduler.adapters.state_cache import StateCache
from sous_scheduler.domain.state import RunPhase, RunState

RECIPE = RecipeSpec.model_validate({"recipe": "r", "steps": {"x": {"run": {"kind": "noop"}}}})


def run(phase: RunPhase = RunPhase.RUNNING) -> RunState:
    return RunState(
        order_run_id=uuid.uuid4(), domain="a", recipe="r", variation="v", kitchen="k", phase=phase
    )


def test_an_ended_run_leaves_the_cache() -> None:
    cache, going = StateCache(), run()
    cache.put(1, going, RECIPE)
    assert cache.known([going.order_run_id]) == {going.order_run_id: (1, going, RECIPE)}
    for phase in (RunPhase.SUCCEEDED, RunPhase.FAILED, RunPhase.CANCELLED):
        ended = going.model_copy(update={"phase": phase})
        cache.put(2, ended, RECIPE)
        assert cache.known([going.order_run_id]) == {}, phase
        assert cache.recipe(going.order_run_id) is None


def test_the_oldest_entries_go_first_when_full() -> None:
    cache = StateCache(size=2)
    one, two, three = run(), run(RunPhase.QUEUED), run()
    cache.put(1, one, RECIPE)
    cache.put(1, two, RECIPE)
    cache.put(2, one, RECIPE)  # written again: now the newest
    cache.put(1, three, RECIPE)
    assert set(cache.known([one.order_run_id, two.order_run_id, three.order_run_id])) == {
        one.order_run_id,
        three.order_run_id,
    }
