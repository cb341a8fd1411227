"""Which owners of running attempts are dead predecessors of this replica."""

from __future__ import annotations

import pytest

from sous_executor.domain.predecessors import predecessor_is_dead

ME = "executor@pod-a:1"


@pytest.mark.parametrize(
    ("owner", "me", "dead_pids", "dead"),
    [
        (ME, ME, set(), True),  # a restarted container: same host, same pid
        ("executor-a", "executor-a", set(), True),  # a configured id survives restarts
        ("executor@pod-a:7", ME, {7}, True),  # a gone process on this host
        ("executor@pod-a:7", ME, set(), False),  # a live replica on this host
        ("executor@pod-b:7", ME, {7}, False),  # another host: its lease decides
        ("executor-b", "executor-a", {7}, False),  # configured ids are never guessed at
        ("executor@pod-a:x", ME, set(), False),
    ],
)
def test_predecessor_is_dead(owner: str, me: str, dead_pids: set[int], dead: bool) -> None:
    assert predecessor_is_dead(owner, me, lambda pid: pid not in dead_pids) is dead
