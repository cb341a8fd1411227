"""Trigger matching and what a firing starts: pure functions over specs and events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sous_contracts.runs import DomainRunCompleted, RunCause, StartOrderRun
from sous_contracts.specs import EventMatch, KitchenSpec, RecipeSpec, TriggerSpec
from sous_contracts.specs.placeholders import substitute
from sous_scheduler.domain.versions import pick


@dataclass(frozen=True)
class Listener:
    """One trigger of one recipe."""

    domain: str
    recipe: str
    index: int
    trigger: TriggerSpec

    @property
    def trigger_id(self) -> str:
        """Stable id: `domain/recipe#name` (or the trigger's position)."""
        return f"{self.domain}/{self.recipe}#{self.trigger.name or self.index}"


def listeners(domain: str, name: str, recipe: RecipeSpec) -> list[Listener]:
    """Every trigger a recipe declares."""
    return [Listener(domain, name, i, t) for i, t in enumerate(recipe.triggers)]


@dataclass
class TriggerIndex:
    """The triggers of every version of every recipe, and which of them a kitchen listens with.

    A completion in kitchen K fires the triggers of the versions K runs: for each recipe, K's
    own version, else that of the nearest kitchen above K with one, else the base version. So
    a sandbox's version (triggers added, changed or removed) answers completions in the
    sandbox and the kitchens below it, the base answers every other kitchen, and no event is
    ever answered by two versions of one recipe.
    """

    versions: dict[tuple[str, str], dict[str | None, list[Listener]]]
    """(domain, recipe) → kitchen of a version (None: the base) → that version's listeners."""
    kitchens: dict[str, KitchenSpec]
    _listening: dict[tuple[str, str], list[Listener]] = field(default_factory=dict)

    def listening(self, domain: str, kitchen: str) -> list[Listener]:
        """Listeners on `domain`'s completions among the versions `kitchen` runs."""
        if (found := self._listening.get((domain, kitchen))) is None:
            found = [
                listener
                for versions in self.versions.values()
                for listener in pick(versions, self.kitchens, kitchen) or []
                if any(p.domain == domain for p in listener.trigger.matches())
            ]
            self._listening[(domain, kitchen)] = found
        return found

    def listener(self, trigger_id: str, kitchen: str) -> Listener | None:
        """The trigger of this id in the version `kitchen` runs (None when it has none)."""
        domain, _, recipe = trigger_id.partition("#")[0].partition("/")
        versions = self.versions.get((domain, recipe), {})
        found = pick(versions, self.kitchens, kitchen) or []
        return next((x for x in found if x.trigger_id == trigger_id), None)


def _tests_ok(rule: str, event: DomainRunCompleted) -> bool:
    t = event.tests
    return {
        "any": True,
        "passed": t.failed == 0 and t.warnings == 0 and t.errors == 0,
        "warnings": t.warnings > 0,
        "no_errors": t.failed == 0,
        "errors": t.failed > 0,
    }[rule]


def matches(pattern: EventMatch, event: DomainRunCompleted) -> bool:
    """True when a completion event fits a trigger pattern."""
    return (
        pattern.domain == event.domain
        and pattern.recipe in (None, event.recipe)
        and pattern.variation in (None, event.variation)
        and pattern.kitchen in (None, event.kitchen)
        and event.status in pattern.status
        and _tests_ok(pattern.tests, event)
    )


def matching_patterns(listener: Listener, event: DomainRunCompleted) -> list[int]:
    """Indexes of the listener's patterns the event fits."""
    return [i for i, p in enumerate(listener.trigger.matches()) if matches(p, event)]


def event_values(event: DomainRunCompleted) -> dict[str, Any]:
    """What `${event.…}` placeholders can read."""
    return {
        "event": {
            "domain": event.domain,
            "recipe": event.recipe,
            "variation": event.variation,
            "kitchen": event.kitchen,
            "status": event.status.value,
            "params": event.params,
            "outputs": event.outputs.values,
            "order_run_id": str(event.order_run_id) if event.order_run_id else None,
        }
    }


def depth_limit(listener: Listener, default: int) -> int:
    """Trigger hops allowed for this trigger."""
    return listener.trigger.max_depth or default


def start_command(
    listener: Listener, event: DomainRunCompleted, order_run_id: uuid.UUID
) -> StartOrderRun:
    """The StartOrderRun a firing makes; kitchens stay isolated unless the trigger says so."""
    return StartOrderRun(
        producer="scheduler",
        correlation_id=event.correlation_id or event.order_run_id,
        causation_id=event.message_id,
        order_run_id=order_run_id,
        domain=listener.domain,
        recipe=listener.recipe,
        variation=listener.trigger.variation,
        kitchen=listener.trigger.kitchen or event.kitchen,
        params=substitute(listener.trigger.params, event_values(event)),
        causation_depth=event.causation_depth + 1,
        trigger_event=event_values(event)["event"],
    )


def join_needed(trigger: TriggerSpec) -> int:
    """How many of a join's patterns must have arrived for it to fire."""
    return trigger.at_least.n if trigger.at_least else len(trigger.all or [])


def join_cutoff(trigger: TriggerSpec, now: datetime) -> datetime:
    """Arrivals before this instant are outside the join's window and no longer count."""
    return now - timedelta(seconds=trigger.within or 0)


def debounce_over(trigger: TriggerSpec, last_arrival: datetime, now: datetime) -> bool:
    """True when a coalescing trigger has been quiet for its whole debounce window."""
    return last_arrival + timedelta(seconds=trigger.debounce) <= now


def trigger_cause(listener: Listener, upstream: list[DomainRunCompleted]) -> RunCause:
    """Why a trigger's run starts: the trigger and the completions that fired it."""
    events = list({e.message_id: e for e in upstream}.values())  # a join may hold one twice
    return RunCause(
        kind="trigger",
        trigger=listener.trigger_id,
        upstream_order_run_ids=list(
            dict.fromkeys(e.order_run_id for e in events if e.order_run_id is not None)
        ),
        upstream_message_ids=[e.message_id for e in events],
    )
