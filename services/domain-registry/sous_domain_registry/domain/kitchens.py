"""The kitchen hierarchy: parameters and connections a domain sees in a kitchen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sous_contracts.specs import ConnectionSpec, DomainSpec, KitchenSpec


@dataclass(frozen=True)
class Resolved:
    """What a domain's runs in one kitchen get, after every override."""

    chain: list[str]
    """Kitchens from the root to this one."""
    params: dict[str, Any]
    """Parameter values (kitchen params, then the domain's per-kitchen overrides)."""
    connections: dict[str, ConnectionSpec]
    """Connections by name (references only, never values)."""


def chain(kitchens: dict[str, KitchenSpec], name: str) -> list[str]:
    """Return the kitchens from the root down to `name` (stops at a cycle or a gap)."""
    out: list[str] = []
    current: str | None = name
    while current is not None and current in kitchens and current not in out:
        out.append(current)
        current = kitchens[current].parent
    return out[::-1]


def resolve(kitchens: dict[str, KitchenSpec], name: str, domain: DomainSpec) -> Resolved:
    """Apply overrides root first: each kitchen, then the domain's settings for that kitchen."""
    params: dict[str, Any] = {}
    connections = dict(domain.connections)
    path = chain(kitchens, name)
    for k in path:
        params.update(kitchens[k].params)
        connections.update(kitchens[k].connections)
        override = domain.kitchens.get(k)
        if override is not None:
            params.update(override.params)
            connections.update(override.connections)
    return Resolved(path, params, connections)
