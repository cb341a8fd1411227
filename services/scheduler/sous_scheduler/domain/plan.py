"""Turning a StartOrderRun into a run: variation, kitchen, params and connections.

Who may ask was settled before: the consumer verified the command's signature and scope.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sous_contracts.runs import RunCause, StartOrderRun
from sous_contracts.specs import DomainSpec, KitchenSpec, RecipeSpec, VariationSpec
from sous_scheduler.domain.params import ParamError, resolve_params
from sous_scheduler.domain.state import RunState, StepState


class Rejected(Exception):
    """The command cannot start a run; the message says why."""


@dataclass(frozen=True)
class Catalog:
    """What the scheduler knows of the registry, for one start."""

    recipe: RecipeSpec | None
    recipe_version: str | None
    domain: DomainSpec | None
    kitchens: dict[str, KitchenSpec] = field(default_factory=dict)


def _variation(cmd: StartOrderRun, recipe: RecipeSpec) -> tuple[str, VariationSpec]:
    names = sorted(recipe.variations)
    if cmd.variation is not None:
        if cmd.variation not in recipe.variations:
            raise Rejected(
                f"unknown variation '{cmd.variation}' of {cmd.domain}/{cmd.recipe}"
                f" (variations: {', '.join(names) or 'none'})"
            )
        return cmd.variation, recipe.variations[cmd.variation]
    if cmd.kitchen is not None:
        for name in names:
            if recipe.variations[name].kitchen == cmd.kitchen:
                return name, recipe.variations[name]
        # No variation for that kitchen: run the bare recipe there.
        return cmd.kitchen, VariationSpec(kitchen=cmd.kitchen)
    if len(names) == 1:
        return names[0], recipe.variations[names[0]]
    raise Rejected(
        f"{cmd.domain}/{cmd.recipe}: name a variation or a kitchen"
        f" (variations: {', '.join(names) or 'none'})"
    )


def kitchen_settings(
    domain: DomainSpec | None, kitchen: str, kitchens: dict[str, KitchenSpec]
) -> tuple[dict[str, Any], dict[str, str]]:
    """A domain's params and connection references in a kitchen (its parents under it).

    Raises Rejected when the kitchen or one of its parents is unknown.
    """
    params: dict[str, Any] = {}
    connections: dict[str, str] = {}
    if domain is not None:
        connections.update({n: c.ref for n, c in domain.connections.items()})
    for k in _kitchen_chain(kitchen, kitchens):
        params.update(k.params)
        connections.update({n: c.ref for n, c in k.connections.items()})
    if domain is not None and kitchen in domain.kitchens:
        override = domain.kitchens[kitchen]
        params.update(override.params)
        connections.update({n: c.ref for n, c in override.connections.items()})
    return params, connections


def _kitchen_chain(name: str, kitchens: dict[str, KitchenSpec]) -> list[KitchenSpec]:
    chain: list[KitchenSpec] = []
    current: str | None = name
    while current is not None:
        if current not in kitchens:
            known = ", ".join(sorted(kitchens)) or "none"
            raise Rejected(f"unknown kitchen '{current}' (kitchens: {known})")
        if any(k.kitchen == current for k in chain):
            raise Rejected(f"kitchen '{name}' has a cyclic parent chain")
        chain.append(kitchens[current])
        current = kitchens[current].parent
    return list(reversed(chain))


def command_cause(cmd: StartOrderRun) -> RunCause:
    """Why a run a command asks for starts: its parent's nested step, a backfill, or the command.

    The principal is the one the consumer verified (the signer, or whom an admin signed for).
    """
    if cmd.parent_order_run_id is not None:
        return RunCause(
            kind="nested",
            principal=cmd.principal,
            parent_order_run_id=cmd.parent_order_run_id,
            parent_step=cmd.parent_step,
        )
    if cmd.backfill_id is not None:  # a partition's run: `backfill_id` on its events names it
        return RunCause(kind="backfill", principal=cmd.principal)
    return RunCause(kind="command", principal=cmd.principal)


def plan_run(
    cmd: StartOrderRun,
    catalog: Catalog,
    *,
    now: datetime,
    new_id: Callable[[], uuid.UUID],
    cause: RunCause | None = None,
) -> RunState:
    """Build the queued run a command asks for, or raise Rejected with the reason.

    `cause` says why it starts when the scheduler itself asks (a schedule, a trigger);
    otherwise the command is the cause.
    """
    where = f"{cmd.domain}/{cmd.recipe}"
    if catalog.recipe is None:
        raise Rejected(f"unknown recipe {where}")
    recipe = catalog.recipe
    variation_name, variation = _variation(cmd, recipe)
    kitchen = cmd.kitchen or variation.kitchen
    kitchen_params, connections = kitchen_settings(catalog.domain, kitchen, catalog.kitchens)
    try:
        params = resolve_params(recipe.params, kitchen_params, variation.params, cmd.params)
    except ParamError as exc:
        raise Rejected(f"{where}: {exc}") from None
    return RunState(
        order_run_id=cmd.order_run_id,
        domain=cmd.domain,
        recipe=cmd.recipe,
        variation=variation_name,
        kitchen=kitchen,
        params=params,
        connections=connections,
        spec_version=catalog.recipe_version,
        steps={n: StepState(name=n, step_run_id=new_id()) for n in recipe.steps},
        correlation_id=cmd.correlation_id or cmd.order_run_id,
        parent_order_run_id=cmd.parent_order_run_id,
        parent_step=cmd.parent_step,
        parent_recipe=cmd.parent_recipe,
        parent_step_run_id=cmd.parent_step_run_id,
        root_order_run_id=cmd.root_order_run_id,
        root_recipe=cmd.root_recipe,
        causation_depth=cmd.causation_depth,
        trigger_event=cmd.trigger_event,
        backfill_id=cmd.backfill_id,
        fire_triggers=cmd.fire_triggers,
        cause=cause or command_cause(cmd),
        created_at=now,
    )
