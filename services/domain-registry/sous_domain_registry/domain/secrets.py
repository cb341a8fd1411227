"""Apply-time checks that keep secrets with their owners and out of the registry.

A connection is a reference (`secret:NAME`), never the value: the spec models refuse
anything else, and `LITERAL` says why in words. A reference names one secret of the domain's
own store, so a name that is a path is refused here rather than failing every run later. Two
domains (or kitchens) whose names differ only by `-` and `_` would share secret variables
(`SOUS_SECRET_SALES_EU__…` for both `sales-eu` and `sales_eu`), so such a pair is refused.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sous_common.references import name_problem, variable_part
from sous_contracts.specs import ConnectionSpec, DomainSpec, KitchenSpec
from sous_domain_registry.domain.catalog import Catalog, domain_file, kitchen_file
from sous_domain_registry.domain.errors import SpecError

LITERAL = (
    "a connection is a reference to the domain's secret store (secret:NAME), never the value itself"
)
"""Why a connection `ref` that is not a reference is refused (the value is never repeated)."""


def _connections(spec: DomainSpec | KitchenSpec) -> Iterable[tuple[str, ConnectionSpec]]:
    for name, conn in spec.connections.items():
        yield f"connections.{name}.ref", conn
    if isinstance(spec, DomainSpec):
        for kitchen, override in spec.kitchens.items():
            for name, conn in override.connections.items():
                yield f"kitchens.{kitchen}.connections.{name}.ref", conn


def reference_errors(file: str, spec: DomainSpec | KitchenSpec) -> list[SpecError]:
    """Return an error for every connection whose secret name cannot be in a store."""
    errors = []
    for path, conn in _connections(spec):
        problem = name_problem(conn.ref.partition(":")[2])
        if problem is not None:
            errors.append(SpecError(file, path, f"{problem}: it is looked up in a domain's store"))
    return errors


def shared_variables(cat: Catalog) -> list[SpecError]:
    """Return an error for domains, and for kitchens, that would share secret variables."""
    errors = []
    for names, file_of, what, variables in (
        (cat.domains, domain_file, "domain", "SOUS_SECRET_{}__*"),
        (cat.kitchens, kitchen_file, "kitchen", "SOUS_SECRET_<DOMAIN>__{}__*"),
    ):
        by_part: dict[str, list[str]] = defaultdict(list)
        for name in names:
            part = variable_part(name)
            if part is not None:
                by_part[part].append(name)
        for part, same in by_part.items():
            if len(same) < 2:
                continue
            others = ", ".join(repr(n) for n in sorted(same))
            for name in same:
                key = f"{what}:{name}"
                errors.append(
                    SpecError(
                        cat.file_of(key, file_of(name)),
                        what,
                        f"{what}s {others} would share the secret variables "
                        f"{variables.format(part)}; rename one",
                    )
                )
    return errors
