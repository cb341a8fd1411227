"""Graph helpers: cycles in step DAGs and in the trigger graph between recipes."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

N = TypeVar("N", bound=Hashable)


def find_cycle(edges: Mapping[N, Sequence[N]]) -> list[N] | None:
    """Return one cycle as a closed list of nodes (`[a, b, a]`), or None."""
    state: dict[N, int] = {}
    stack: list[N] = []

    def visit(node: N) -> list[N] | None:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges, key=str):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def reachable(edges: Mapping[N, Sequence[N]], starts: set[N]) -> set[N]:
    """Return every node reachable from `starts` (excluding the starts unless on a cycle)."""
    seen: set[N] = set()
    todo = [n for s in starts for n in edges.get(s, ())]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, ()))
    return seen
