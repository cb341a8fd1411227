"""The trigger graph across domains, and the checks of a trigger's partition key."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from sous_contracts.specs import TriggerSpec
from sous_contracts.specs.placeholders import references
from sous_domain_registry.domain.catalog import Catalog, RecipeKey
from sous_domain_registry.domain.errors import SpecError
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


def key_errors(t: TriggerSpec, file: str, at: str) -> list[SpecError]:
    """Refuse joins that would pair events of different partitions, and keys that read none."""
    reads = references(t.params)
    joins = t.all is not None or t.at_least is not None
    errors = []
    if t.key is None and joins and any(p.startswith("event.") for p in reads):
        kind = "all" if t.all is not None else "at_least"
        errors.append(
            SpecError(
                file,
                f"{at}.key",
                f"'{kind}' join whose params read upstream event values needs a 'key' "
                '(for example key: "${event.params.day}"), or it joins events of different '
                "partitions",
            )
        )
    if t.key is None and "key" in reads:
        errors.append(
            SpecError(file, f"{at}.params", "'${key}' is read but the trigger has no 'key'")
        )
    if t.key is not None and not any(p.startswith("event.") for p in references(t.key)):
        errors.append(
            SpecError(
                file,
                f"{at}.key",
                f"key {t.key!r} reads no upstream event value; "
                "use a placeholder such as '${event.params.day}'",
            )
        )
    return errors
