"""Trigger matching and what a firing starts: pure functions over specs and events."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sous_contracts.runs import (
    TRIGGER_KEY_MAX,
    DomainRunCompleted,
    JoinArrival,
    JoinWindowExpired,
    RunCause,
    StartOrderRun,
    TriggerHeld,
)
from sous_contracts.specs import EventMatch, KitchenSpec, RecipeSpec, TriggerSpec
from sous_contracts.specs.placeholders import ParamError, substitute
from sous_scheduler.domain.events import Context
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


def too_deep(listener: Listener, event: DomainRunCompleted, default: int) -> str | None:
    """Why a firing on this event is refused for its causation depth; None when it is not."""
    depth, limit = event.causation_depth + 1, depth_limit(listener, default)
    return f"refused: causation depth {depth} > limit {limit}" if depth > limit else None


def partition_key(trigger: TriggerSpec, event: DomainRunCompleted) -> str | None:
    """The partition key an event carries for a keyed trigger (None: the trigger has none).

    The key is the event's text, indexed with the trigger's join windows: one longer than
    `TRIGGER_KEY_MAX` is refused here, before anything is stored or locked for it.

    Raises:
        ParamError: the key's placeholders do not resolve on this event, or it resolves to
            more than `TRIGGER_KEY_MAX` characters.
    """
    if trigger.key is None:
        return None
    value = substitute(trigger.key, event_values(event))
    key = value if isinstance(value, str) else str(value)
    if len(key) > TRIGGER_KEY_MAX:
        raise ParamError(
            f"resolves to {len(key)} characters, longer than the limit of {TRIGGER_KEY_MAX}"
        )
    return key


def start_command(
    listener: Listener,
    event: DomainRunCompleted,
    order_run_id: uuid.UUID,
    ctx: Context,
    key: str | None = None,
) -> StartOrderRun:
    """The StartOrderRun a firing makes; kitchens stay isolated unless the trigger says so.

    A keyed trigger's params may read the key as `${key}`; the run's trigger context has it.
    """
    values: dict[str, Any] = event_values(event)
    if key is not None:
        values = {**values, "key": key, "event": {**values["event"], "key": key}}
    return StartOrderRun(
        message_id=ctx.new_id(),
        occurred_at=ctx.now,
        producer="scheduler",
        correlation_id=event.correlation_id or event.order_run_id,
        causation_id=event.message_id,
        order_run_id=order_run_id,
        domain=listener.domain,
        recipe=listener.recipe,
        variation=listener.trigger.variation,
        kitchen=listener.trigger.kitchen or event.kitchen,
        params=substitute(listener.trigger.params, values),
        causation_depth=event.causation_depth + 1,
        trigger_event=values["event"],
    )


def join_lock(listener: Listener, event: DomainRunCompleted) -> str | None:
    """The lock an arrival of `event` at the listener's join takes.

    None when the trigger joins nothing, or when the event cannot give its key (the arrival
    is refused, without a lock).
    """
    trigger = listener.trigger
    where = f"join:{listener.trigger_id}:{event.kitchen}"
    if trigger.key is not None:
        try:
            return f"{where}:{partition_key(trigger, event)}"
        except ParamError:
            return None
    return where if trigger.all is not None or trigger.at_least is not None else None


def join_needed(trigger: TriggerSpec) -> int:
    """How many of a join's patterns must have arrived for it to fire."""
    return trigger.at_least.n if trigger.at_least else len(trigger.all or [])


def join_cutoff(trigger: TriggerSpec, now: datetime) -> datetime:
    """Arrivals before this instant are outside the join's window and no longer count."""
    return now - timedelta(seconds=trigger.within or 0)


def debounce_over(trigger: TriggerSpec, last_arrival: datetime, now: datetime) -> bool:
    """True when a coalescing trigger has been quiet for its whole debounce window."""
    return last_arrival + timedelta(seconds=trigger.debounce) <= now


class Upstream(Protocol):
    """A completion that fired a trigger, as its run's cause names it."""

    @property
    def message_id(self) -> uuid.UUID:
        """The completion event's id."""
        ...

    @property
    def order_run_id(self) -> uuid.UUID | None:
        """The upstream run, when the event names one."""
        ...


def trigger_cause(listener: Listener, upstream: Sequence[Upstream]) -> RunCause:
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


@dataclass(frozen=True)
class Arrival:
    """An upstream completion that arrived in a join window."""

    message_id: uuid.UUID
    order_run_id: uuid.UUID | None


@dataclass(frozen=True)
class JoinWindow:
    """The join state of one key of a keyed trigger: its window and what arrived in it."""

    window_id: uuid.UUID
    """Id the join's run would have; an expiry is published under it."""
    opened_at: datetime
    deadline: datetime
    arrivals: dict[int, Arrival] = field(default_factory=dict)
    """Pattern index → the latest completion that matched it."""
    fired: bool = False
    """An `any` window that fired already: later arrivals of its key are absorbed."""


@dataclass(frozen=True)
class JoinStep:
    """What one arrival does to a key's join state."""

    window: JoinWindow | None
    """State to keep for the key (None: forget it)."""
    fire: bool
    """Start the downstream run now."""
    expired: JoinWindow | None = None
    """A window of the key that had ended half-joined before this arrival."""
    arrived: tuple[Arrival, ...] = ()
    """When it fires: every arrival of the window, this one among them (the run's cause)."""


def join_arrive(
    trigger: TriggerSpec,
    window: JoinWindow | None,
    patterns: list[int],
    event: DomainRunCompleted,
    now: datetime,
    new_id: Callable[[], uuid.UUID],
) -> JoinStep:
    """Decide what a completion of one key does to a keyed trigger's join state.

    `all` / `at_least` fire once enough patterns arrived inside the key's window; `any` fires
    on the key's first arrival and absorbs the others until its window ends (without
    `within`, every arrival fires). A window past its deadline is over before this arrival.
    """
    expired = None
    if window is not None and window.deadline <= now:
        expired = None if window.fired else window
        window = None
    if trigger.any is not None and not trigger.within:
        return JoinStep(None, fire=True, expired=expired)
    if window is None:
        deadline = now + timedelta(seconds=trigger.within or 0)
        window = JoinWindow(new_id(), now, deadline)
    if trigger.any is not None:
        return JoinStep(replace(window, fired=True), fire=not window.fired, expired=expired)
    arrival = Arrival(event.message_id, event.order_run_id)
    arrivals = {**window.arrivals, **dict.fromkeys(patterns, arrival)}
    if len(arrivals) >= join_needed(trigger):
        return JoinStep(None, fire=True, expired=expired, arrived=tuple(arrivals.values()))
    return JoinStep(replace(window, arrivals=arrivals), fire=False, expired=expired)


def window_expired(
    listener: Listener, kitchen: str, key: str, window: JoinWindow, ctx: Context
) -> JoinWindowExpired | None:
    """The event a window that ended half-joined publishes (None: it fired, nothing to say)."""
    if window.fired:
        return None
    upstreams = [
        JoinArrival(
            domain=p.domain,
            recipe=p.recipe,
            arrived=(a := window.arrivals.get(i)) is not None,
            order_run_id=a.order_run_id if a else None,
            message_id=a.message_id if a else None,
        )
        for i, p in enumerate(listener.trigger.matches())
    ]
    last = max(window.arrivals.values(), key=lambda a: a.message_id, default=None)
    return JoinWindowExpired(
        message_id=ctx.new_id(),
        occurred_at=ctx.now,
        producer="scheduler",
        correlation_id=window.window_id,
        causation_id=last.message_id if last else None,
        order_run_id=window.window_id,
        trigger_id=listener.trigger_id,
        domain=listener.domain,
        recipe=listener.recipe,
        kitchen=kitchen,
        key=key,
        needed=max(join_needed(listener.trigger), 1),
        upstreams=upstreams,
        opened_at=window.opened_at,
        deadline=window.deadline,
    )


def held_event(
    listener: Listener,
    event: DomainRunCompleted,
    run_id: uuid.UUID,
    datasets: list[str],
    outcome: str,
    ctx: Context,
) -> TriggerHeld:
    """The event that says a trigger waits for monitors, and the run it will start."""
    return TriggerHeld(
        **event.caused(producer="scheduler"),
        message_id=ctx.new_id(),
        occurred_at=ctx.now,
        order_run_id=run_id,
        trigger_id=listener.trigger_id,
        domain=listener.domain,
        recipe=listener.recipe,
        kitchen=listener.trigger.kitchen or event.kitchen,
        upstream_order_run_id=event.order_run_id,
        datasets=datasets,
        reason=outcome.removeprefix("held: "),
    )
