"""The trigger graph: which recipe's completions start which recipes, across domains."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from sous_domain_registry.domain.catalog import Catalog, RecipeKey
from sous_domain_registry.domain.graph import find_cycle, reachable


@dataclass(frozen=True)
class TriggerEdge:
    """Upstream recipe → downstream recipe, through one trigger."""

    upstream: RecipeKey
    downstream: RecipeKey
    index: int
    """Index of the trigger in the downstream recipe's `triggers`."""
    allow_cycle: bool


def edges(cat: Catalog) -> list[TriggerEdge]:
    """Return every edge of the trigger graph (unresolved upstreams are left out)."""
    out: list[TriggerEdge] = []
    for key, recipe in sorted(cat.recipes.items()):
        for i, trigger in enumerate(recipe.triggers):
            for match in trigger.matches():
                ups = (
                    [(match.domain, match.recipe)]
                    if match.recipe is not None
                    else [k for k in cat.recipes if k[0] == match.domain]
                )
                out.extend(
                    TriggerEdge(up, key, i, trigger.allow_cycle) for up in ups if up in cat.recipes
                )
    return out


def unguarded_cycle(cat: Catalog) -> tuple[list[RecipeKey], TriggerEdge] | None:
    """Return a trigger cycle none of whose triggers opted in, and one edge on it."""
    graph: dict[RecipeKey, list[RecipeKey]] = {}
    for e in edges(cat):
        if not e.allow_cycle:
            graph.setdefault(e.upstream, []).append(e.downstream)
    cycle = find_cycle(graph)
    if cycle is None:
        return None
    on_cycle = {(a, b) for a, b in itertools.pairwise(cycle)}
    edge = next(e for e in edges(cat) if (e.upstream, e.downstream) in on_cycle)
    return cycle, edge


def downstream_domains(cat: Catalog, changed: set[RecipeKey]) -> list[str]:
    """Return the domains whose recipes a change to `changed` recipes would trigger."""
    graph: dict[RecipeKey, list[RecipeKey]] = {}
    for e in edges(cat):
        graph.setdefault(e.upstream, []).append(e.downstream)
    return sorted({k[0] for k in reachable(graph, changed)})
