"""Spec models of recipes, ingredients, variations, schedules and triggers."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from sous_contracts.common import RunStatus
from sous_contracts.specs.common import Duration, ParamSpec, Spec, SpecName
from sous_contracts.specs.steps import StepSpec


class ScheduleSpec(Spec):
    """A cron schedule of a variation, and what to do with fires missed while down."""

    cron: str
    """Five-field cron expression (validated at apply time)."""
    timezone: str = "UTC"
    """IANA time zone the cron is read in."""
    missed: Literal["skip", "run_once"] = "skip"
    """Fires missed during downtime: skip them, or run once for all of them."""


def schedule_shorthand(data: Any) -> Any:
    """Read a plain-string `schedule` of a mapping as its cron expression."""
    if isinstance(data, dict) and isinstance(data.get("schedule"), str):
        return {**data, "schedule": {"cron": data["schedule"]}}
    return data


class ConcurrencySpec(Spec):
    """How many runs of a variation may run at once, and what happens to one more."""

    limit: int = Field(default=1, ge=1)
    """Runs at once."""
    policy: Literal["queue", "cancel-new", "cancel-running"] = "queue"
    """Queue the new run, refuse it, or cancel the running one."""


class VariationSpec(Spec):
    """A recipe + kitchen + parameter set (+ optional schedule)."""

    kitchen: SpecName
    """Kitchen the variation runs in."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Parameter values (over the kitchen's, under command overrides)."""
    schedule: Annotated[ScheduleSpec | None, Field(default=None)] = None
    """Cron schedule; a plain string is the cron expression."""
    concurrency: ConcurrencySpec | None = None
    """Overrides the recipe's concurrency."""

    @model_validator(mode="before")
    @classmethod
    def _schedule_shorthand(cls, data: Any) -> Any:
        return schedule_shorthand(data)


class EventMatch(Spec):
    """Which upstream completion events a trigger listens to."""

    domain: SpecName
    """Upstream domain."""
    recipe: SpecName | None = None
    """Upstream recipe; None matches any."""
    variation: SpecName | None = None
    """Upstream variation; None matches any."""
    kitchen: SpecName | None = None
    """Upstream kitchen; None means the trigger's own kitchen (isolation)."""
    status: list[RunStatus] = Field(default_factory=lambda: [RunStatus.SUCCEEDED])
    """Statuses that match."""
    tests: Literal["any", "passed", "warnings", "no_errors", "errors"] = "no_errors"
    """Test outcome that matches: `passed` (no warnings either), `warnings` (some),
    `no_errors`, `errors` (error tests failed) or `any`."""


class AtLeast(Spec):
    """At least `n` of the listed events."""

    n: int = Field(ge=1)
    """How many must arrive."""
    of: list[EventMatch] = Field(min_length=1)
    """Candidates."""


class TriggerSpec(Spec):
    """Starts a variation of this recipe when upstream domains complete runs."""

    name: SpecName | None = None
    """Name (default `trigger-<index>`)."""
    on: EventMatch | None = None
    """A single upstream event."""
    all: list[EventMatch] | None = None
    """Join: fire once every listed event arrived within `within`."""
    any: list[EventMatch] | None = None
    """Fire on any of the listed events."""
    at_least: AtLeast | None = None
    """Fire once `n` of them arrived within `within`."""
    within: Duration | None = None
    """Join window (of each key, when the trigger has a `key`)."""
    key: str | None = None
    """Partition key read from each upstream event (`${event.params.day}`): only events of
    equal keys join, each key with its own window; params may read it as `${key}`. An event
    whose key resolves to more than 256 characters (`runs.TRIGGER_KEY_MAX`) does not fire the
    trigger."""
    mode: Literal["per_event", "coalesce"] = "per_event"
    """One run per event, or one run per debounce window."""
    debounce: Duration = 0.0
    """Window for `coalesce`."""
    variation: SpecName
    """Variation to start."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Params, may use `${event.params.x}` and `${event.outputs.x}`."""
    kitchen: SpecName | None = None
    """Run in this kitchen instead of the upstream's (crossing kitchens is explicit)."""
    allow_cycle: bool = False
    """Opt in to a trigger cycle across domains; requires `max_depth`."""
    max_depth: int | None = Field(default=None, ge=1, le=100)
    """Stop after this many trigger hops."""
    require: Literal["monitors_pass"] | None = None
    """`monitors_pass`: fire only while the latest monitor results of the datasets the
    upstream recipe writes passed (no failed error-severity test); else the firing is held
    and fires once they pass."""

    @model_validator(mode="after")
    def _one_condition(self) -> Self:
        given = [k for k in ("on", "all", "any", "at_least") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a trigger needs exactly one of 'on', 'all', 'any', 'at_least' (got {given})"
            )
        if given[0] in ("all", "at_least") and self.within is None:
            raise ValueError(f"'{given[0]}' needs a 'within' window")
        if self.allow_cycle and self.max_depth is None:
            raise ValueError("'allow_cycle: true' needs 'max_depth'")
        return self

    def matches(self) -> list[EventMatch]:
        """Return every event pattern this trigger listens to."""
        if self.on is not None:
            return [self.on]
        if self.at_least is not None:
            return list(self.at_least.of)
        return list(self.all or self.any or [])


class RecipeSpec(Spec):
    """A DAG of steps inside one domain (`recipes/<name>.yaml`)."""

    recipe: SpecName
    """Recipe name."""
    description: str = ""
    """What it makes."""
    params: dict[SpecName, ParamSpec] = Field(default_factory=dict)
    """Declared parameters."""
    steps: dict[SpecName, StepSpec] = Field(min_length=1)
    """Steps by name."""
    variations: dict[SpecName, VariationSpec] = Field(default_factory=dict)
    """Variations by name."""
    triggers: list[TriggerSpec] = Field(default_factory=list)
    """Upstream events that start it."""
    concurrency: ConcurrencySpec = Field(default_factory=ConcurrencySpec)
    """Concurrent runs per variation."""
    timeout: Duration = 86400.0
    """Longest a whole run may take."""


class IngredientSpec(Spec):
    """A versioned, parameterised fragment other domains include (`use: d/name@2`)."""

    ingredient: SpecName
    """Ingredient name."""
    version: int = Field(ge=1)
    """Version; users pin it."""
    description: str = ""
    """What it does."""
    params: dict[SpecName, ParamSpec] = Field(default_factory=dict)
    """Declared parameters (`with:` values)."""
    steps: dict[SpecName, StepSpec] = Field(min_length=1)
    """Steps expanded into the including recipe."""
