"""The run states this process last wrote or read, by the row version that holds them.

Parsing a run's state (and reading it and its recipe out of PostgreSQL's jsonb) was the
largest cost of handling an event: each event loads the state the previous one saved. A
row's `xmin` names the transaction that wrote that version of the row, so a load asks for
the state only when the row is not the version cached here; another replica's write, a
rolled-back save or a cleared cache all just mean a full read. Every statement that
writes `runs.state` goes through `postgres.py`, which notes what it wrote here.
"""

from __future__ import annotations

import uuid

from sous_contracts.specs import RecipeSpec
from sous_scheduler.domain.state import RunState

Entry = tuple[int, RunState, RecipeSpec]
"""The row version (xmin) and what it holds."""


class StateCache:
    """A bounded map from run id to its last known row version, state and recipe."""

    def __init__(self, size: int = 20_000) -> None:
        self._size = size
        self._entries: dict[uuid.UUID, Entry] = {}

    def known(self, order_run_ids: list[uuid.UUID]) -> dict[uuid.UUID, Entry]:
        """The entries of those of `order_run_ids` cached here."""
        return {i: e for i in order_run_ids if (e := self._entries.get(i)) is not None}

    def put(self, version: int, state: RunState, recipe: RecipeSpec) -> None:
        """Note that row version `version` of the run holds `state` (and `recipe`)."""
        run_id = state.order_run_id
        self._entries.pop(run_id, None)  # re-inserted last: the oldest go first
        if state.phase.final:
            # An ended run is seldom read again. Kept, thousands of them would fill the
            # cache, and every full collection of the garbage collector walks all their
            # objects: 80-100 ms pauses of the whole service under load.
            return
        self._entries[run_id] = (version, state, recipe)
        while len(self._entries) > self._size:
            del self._entries[next(iter(self._entries))]

    def recipe(self, order_run_id: uuid.UUID) -> RecipeSpec | None:
        """The recipe of a run, whatever its row version (a run's recipe never changes)."""
        entry = self._entries.get(order_run_id)
        return entry[2] if entry is not None else None
