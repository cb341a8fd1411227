"""Apply-time checks of monitors, and of triggers that require them to pass.

Also the checks monitors share with variations and triggers: a cron schedule and an upstream
event pattern.
"""

from __future__ import annotations

import zoneinfo

from croniter import croniter

from sous_contracts.specs import EventMatch, RecipeSpec, ScheduleSpec, StepSpec, TestSpec
from sous_contracts.specs.placeholders import PLACEHOLDER
from sous_domain_registry.domain.catalog import Catalog, domain_file
from sous_domain_registry.domain.errors import SpecError


def schedule_errors(schedule: ScheduleSpec, file: str, at: str) -> list[SpecError]:
    """A cron of five valid fields, in a known time zone."""
    out = []
    cron = schedule.cron
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        out.append(SpecError(file, f"{at}.schedule.cron", f"invalid cron {cron!r} (5 fields)"))
    try:
        zoneinfo.ZoneInfo(schedule.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        out.append(SpecError(file, f"{at}.schedule.timezone", "unknown time zone"))
    return out


def match_errors(cat: Catalog, m: EventMatch, file: str, at: str) -> list[SpecError]:
    """An upstream pattern names a known domain, recipe and variation."""
    if m.domain not in cat.domains:
        return [SpecError(file, f"{at}.domain", f"unknown domain {m.domain!r}")]
    if m.recipe is not None and (m.domain, m.recipe) not in cat.recipes:
        return [SpecError(file, f"{at}.recipe", f"unknown recipe '{m.domain}/{m.recipe}'")]
    if (
        m.recipe is not None
        and m.variation is not None
        and m.variation not in cat.recipes[(m.domain, m.recipe)].variations
    ):
        return [SpecError(file, f"{at}.variation", f"unknown variation {m.variation!r}")]
    return []


def monitor_errors(cat: Catalog) -> list[SpecError]:
    """Every monitor's kitchen, connections, schedule and upstream resolve."""
    out: list[SpecError] = []
    for domain, spec in cat.domains.items():
        file = cat.file_of(f"domain:{domain}", domain_file(domain))
        conns = sorted(spec.connections)
        for name, m in spec.monitors.items():
            at = f"monitors.{name}"
            if m.kitchen not in cat.kitchens:
                known = ", ".join(sorted(cat.kitchens)) or "none"
                out.append(
                    SpecError(file, f"{at}.kitchen", f"unknown kitchen {m.kitchen!r} ({known})")
                )
            named = [(f"{at}.connection", m.connection)] + [
                (f"{at}.tests[{i}].check.connection", getattr(t.check, "connection", None))
                for i, t in enumerate(m.tests)
            ]
            for path, conn in named:
                if conn is not None and conn not in conns:
                    out.append(
                        SpecError(
                            file,
                            path,
                            f"unknown connection {conn!r} of domain {domain!r} "
                            f"(connections: {', '.join(conns) or 'none'})",
                        )
                    )
            if m.schedule is not None:
                out += schedule_errors(m.schedule, file, at)
            if m.on is not None:
                out += match_errors(cat, m.on, file, f"{at}.on")
    return out


def _written(recipe: RecipeSpec) -> set[str]:
    return {d for step in recipe.steps.values() for d in step.outputs}


def _monitored(cat: Catalog) -> set[str]:
    return {m.dataset for d in cat.domains.values() for m in d.monitors.values()}


def require_errors(
    cat: Catalog, patterns: list[tuple[str, EventMatch]], file: str, at: str
) -> list[SpecError]:
    """`require: monitors_pass` needs a monitor on a dataset its upstream recipes write."""
    watched = _monitored(cat)
    for _, m in patterns:
        ups = [r for (d, n), r in cat.recipes.items() if d == m.domain and m.recipe in (None, n)]
        for up in ups:
            for dataset in _written(up):
                # A placeholder in either name can stand for the other: compare their shapes.
                shape = PLACEHOLDER.sub("*", dataset)
                if any(PLACEHOLDER.sub("*", w) == shape for w in watched):
                    return []
    upstream = ", ".join(f"{m.domain}/{m.recipe or '*'}" for _, m in patterns)
    return [
        SpecError(
            file,
            f"{at}.require",
            f"'monitors_pass' but no monitor watches a dataset {upstream} writes "
            "(declare one under `monitors:` of the domain that owns the dataset)",
        )
    ]


def monitor_test(cat: Catalog, domain: str, ref: str) -> TestSpec | str:
    """The monitor test a step reuses (`monitor.test`, `domain/monitor.test`), or why not."""
    owner, _, rest = ref.rpartition("/")
    owner = owner or domain
    name, _, test = rest.partition(".")
    spec = cat.domains.get(owner)
    if spec is None:
        return f"unknown domain {owner!r}"
    monitor = spec.monitors.get(name)
    if monitor is None:
        known = ", ".join(sorted(spec.monitors)) or "none"
        return f"unknown monitor '{owner}/{name}' (monitors: {known})"
    for t in monitor.tests:
        if t.name == test:
            return t
    known = ", ".join(t.name for t in monitor.tests)
    return f"unknown test {test!r} of monitor '{owner}/{name}' (tests: {known})"


def monitor_test_errors(
    cat: Catalog, domain: str, step: StepSpec, file: str, at: str
) -> list[SpecError]:
    """Every `monitor_tests` entry of a step names a monitor test; no name twice."""
    out = []
    names = {t.name for t in step.tests}
    for i, ref in enumerate(step.monitor_tests):
        found = monitor_test(cat, domain, ref)
        if isinstance(found, str):
            out.append(SpecError(file, f"{at}.monitor_tests[{i}]", found))
        elif found.name in names:
            why = f"test name {found.name!r} is already a test of the step"
            out.append(SpecError(file, f"{at}.monitor_tests[{i}]", why))
        else:
            names.add(found.name)
    return out


def with_monitor_tests(cat: Catalog, domain: str, step: StepSpec) -> StepSpec:
    """The step with the monitor tests it reuses among its own (validated before)."""
    if not step.monitor_tests:
        return step
    tests = list(step.tests)
    for ref in step.monitor_tests:
        found = monitor_test(cat, domain, ref)
        if isinstance(found, str):
            raise ValueError(f"monitor_tests: {found}")
        tests.append(found)
    return step.model_copy(update={"tests": tests, "monitor_tests": []})
