"""Apply-time validation of a whole catalog: references, DAGs, params, crons, trigger cycles."""

from __future__ import annotations

from sous_common.conditions import check
from sous_contracts.specs import EventMatch, IngredientSpec, RecipeSpec, StepSpec, TriggerSpec
from sous_contracts.specs.placeholders import references
from sous_contracts.specs.steps import SqlRun
from sous_domain_registry.domain.catalog import (
    Catalog,
    domain_file,
    ingredient_file,
    kitchen_file,
    recipe_file,
)
from sous_domain_registry.domain.errors import SpecError
from sous_domain_registry.domain.graph import find_cycle
from sous_domain_registry.domain.kitchen_params import undeclared
from sous_domain_registry.domain.monitors import (
    match_errors,
    monitor_errors,
    monitor_test_errors,
    require_errors,
    schedule_errors,
)
from sous_domain_registry.domain.params import check_defaults, check_values
from sous_domain_registry.domain.secrets import shared_variables
from sous_domain_registry.domain.triggers import key_errors, unguarded_cycle


def resolve_recipe(ref: str, domain: str) -> tuple[str, str]:
    """Turn `recipe` or `domain/recipe` into (domain, recipe)."""
    d, _, r = ref.rpartition("/")
    return (d or domain, r)


def parse_ingredient_ref(ref: str) -> tuple[str, str, int]:
    """Turn `domain/name@N` into (domain, name, N)."""
    path, _, version = ref.partition("@")
    d, _, name = path.partition("/")
    return (d, name, int(version))


def validate(cat: Catalog) -> list[SpecError]:
    """Return every error of the catalog, sorted by file and path."""
    errors: list[SpecError] = []
    _kitchens(cat, errors)
    errors.extend(undeclared(cat))
    errors.extend(shared_variables(cat))
    errors.extend(monitor_errors(cat))
    for (domain, name), recipe in cat.recipes.items():
        file = cat.file_of(f"recipe:{domain}/{name}", recipe_file(domain, name))
        _recipe(cat, domain, recipe, file, errors)
    for (domain, name, version), ingredient in cat.ingredients.items():
        key = f"ingredient:{domain}/{name}@{version}"
        file = cat.file_of(key, ingredient_file(domain, name, version))
        _steps(cat, domain, ingredient, file, errors)
    if (found := unguarded_cycle(cat)) is not None:
        cycle, edge = found
        d, r = edge.downstream
        chain = " → ".join(f"{a}/{b}" for a, b in cycle)
        errors.append(
            SpecError(
                cat.file_of(f"recipe:{d}/{r}", recipe_file(d, r)),
                f"triggers[{edge.index}]",
                f"trigger cycle {chain}; set 'allow_cycle: true' and 'max_depth' on a trigger "
                "of the cycle to allow it",
            )
        )
    return sorted(set(errors))


def _kitchens(cat: Catalog, errors: list[SpecError]) -> None:
    parents: dict[str, list[str]] = {}
    for name, k in cat.kitchens.items():
        file = cat.file_of(f"kitchen:{name}", kitchen_file(name))
        if k.parent is not None:
            parents[name] = [k.parent]
            if k.parent not in cat.kitchens:
                errors.append(SpecError(file, "parent", f"unknown kitchen {k.parent!r}"))
        for field in ("provision", "teardown"):
            ref = getattr(k, field)
            if ref is not None and "/" in ref and resolve_recipe(ref, "") not in cat.recipes:
                errors.append(SpecError(file, field, f"unknown recipe {ref!r}"))
    if (cycle := find_cycle(parents)) is not None:
        errors.append(
            SpecError(kitchen_file(cycle[0]), "parent", f"kitchen cycle {' → '.join(cycle)}")
        )
    known = ", ".join(sorted(cat.kitchens)) or "none"
    for name, d in cat.domains.items():
        for kitchen in d.kitchens:
            if kitchen not in cat.kitchens:
                errors.append(
                    SpecError(
                        cat.file_of(f"domain:{name}", domain_file(name)),
                        f"kitchens.{kitchen}",
                        f"unknown kitchen {kitchen!r} (kitchens: {known})",
                    )
                )


def _kind(value: object) -> str:
    """The param type of a literal step param value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict):
        return "object"
    return "array" if isinstance(value, list) else "string"


def _steps(
    cat: Catalog, domain: str, spec: RecipeSpec | IngredientSpec, file: str, errors: list[SpecError]
) -> None:
    names = ", ".join(spec.steps)
    for pname, reason in check_defaults(spec.params):
        errors.append(SpecError(file, f"params.{pname}", reason))
    for sname, step in spec.steps.items():
        at = f"steps.{sname}"
        for i, need in enumerate(step.needs):
            if need not in spec.steps:
                errors.append(
                    SpecError(file, f"{at}.needs[{i}]", f"unknown step {need!r} (steps: {names})")
                )
        _step_refs(cat, domain, spec, step, file, at, errors)
        errors += _dataset_refs(spec, step, file, at)
        if step.when is not None:
            types: dict[str, str] = {n: p.type for n, p in spec.params.items()}
            # Step-level values become params of the step too; a `${…}` value is a string.
            types |= {n: _kind(v) for n, v in step.params.items() if n not in types}
            for reason in check(step.when, params=types, needs=step.needs):
                errors.append(SpecError(file, f"{at}.when", reason))
    cycle = find_cycle({n: [x for x in s.needs if x in spec.steps] for n, s in spec.steps.items()})
    if cycle is not None:
        errors.append(
            SpecError(file, f"steps.{cycle[0]}.needs", f"cyclic DAG: {' → '.join(cycle)}")
        )


def _dataset_refs(
    spec: RecipeSpec | IngredientSpec, step: StepSpec, file: str, at: str
) -> list[SpecError]:
    """Every `${params.x}` of a step's datasets names a param of the recipe or the step."""
    declared = set(spec.params) | set(step.params)
    out = []
    for field in ("inputs", "outputs"):
        for i, name in enumerate(getattr(step, field)):
            for path in references(name):
                if path.removeprefix("params.") not in declared:
                    known = ", ".join(sorted(declared)) or "none"
                    why = f"${{{path}}} does not resolve: no such param (declared: {known})"
                    out.append(SpecError(file, f"{at}.{field}[{i}]", why))
    return out


def _step_refs(
    cat: Catalog,
    domain: str,
    spec: RecipeSpec | IngredientSpec,
    step: StepSpec,
    file: str,
    at: str,
    errors: list[SpecError],
) -> None:
    dspec = cat.domains.get(domain)
    conns = sorted(dspec.connections) if dspec is not None else []
    if isinstance(step.run, SqlRun) and step.run.connection not in conns:
        errors.append(
            SpecError(
                file,
                f"{at}.run.connection",
                f"unknown connection {step.run.connection!r} of domain {domain!r} "
                f"(connections: {', '.join(conns) or 'none'})",
            )
        )
    errors.extend(monitor_test_errors(cat, domain, step, file, at))
    for i, test in enumerate(step.tests):
        conn = getattr(test.check, "connection", None)
        if conn is not None and conn not in conns:
            errors.append(
                SpecError(file, f"{at}.tests[{i}].check.connection", f"unknown connection {conn!r}")
            )
    if step.recipe is not None:
        target = resolve_recipe(step.recipe, domain)
        nested = cat.recipes.get(target)
        if nested is None:
            errors.append(
                SpecError(file, f"{at}.recipe", f"unknown recipe '{target[0]}/{target[1]}'")
            )
        else:
            what = f"recipe {target[0]}/{target[1]}"
            for pname, reason in check_values(nested.params, step.with_, what=what):
                errors.append(SpecError(file, f"{at}.with.{pname}", reason))
    if step.use is not None:
        key = parse_ingredient_ref(step.use)
        ingredient = cat.ingredients.get(key)
        if ingredient is None:
            have = sorted(f"@{v}" for d, n, v in cat.ingredients if (d, n) == key[:2])
            errors.append(
                SpecError(
                    file,
                    f"{at}.use",
                    f"unknown ingredient {step.use!r} (versions: {', '.join(have) or 'none'})",
                )
            )
        else:
            what = f"ingredient {step.use}"
            for pname, reason in check_values(ingredient.params, step.with_, what=what):
                errors.append(SpecError(file, f"{at}.with.{pname}", reason))
            for pname, p in ingredient.params.items():
                if p.required and p.default is None and pname not in step.with_:
                    errors.append(
                        SpecError(file, f"{at}.with", f"missing required param {pname!r} of {what}")
                    )


def _match_paths(t: TriggerSpec, at: str) -> list[tuple[str, EventMatch]]:
    if t.on is not None:
        return [(f"{at}.on", t.on)]
    if t.at_least is not None:
        return [(f"{at}.at_least.of[{j}]", m) for j, m in enumerate(t.at_least.of)]
    key = "all" if t.all is not None else "any"
    return [(f"{at}.{key}[{j}]", m) for j, m in enumerate(t.all or t.any or [])]


def _recipe(
    cat: Catalog, domain: str, recipe: RecipeSpec, file: str, errors: list[SpecError]
) -> None:
    _steps(cat, domain, recipe, file, errors)
    for vname, v in recipe.variations.items():
        at = f"variations.{vname}"
        if v.kitchen not in cat.kitchens:
            errors.append(SpecError(file, f"{at}.kitchen", f"unknown kitchen {v.kitchen!r}"))
        for pname, reason in check_values(recipe.params, v.params, what="the recipe"):
            errors.append(SpecError(file, f"{at}.params.{pname}", reason))
        if v.schedule is not None:
            errors.extend(schedule_errors(v.schedule, file, at))
    for i, t in enumerate(recipe.triggers):
        at = f"triggers[{i}]"
        if t.variation not in recipe.variations:
            known = ", ".join(sorted(recipe.variations)) or "none"
            errors.append(
                SpecError(
                    file,
                    f"{at}.variation",
                    f"unknown variation {t.variation!r} (variations: {known})",
                )
            )
        if t.kitchen is not None and t.kitchen not in cat.kitchens:
            errors.append(SpecError(file, f"{at}.kitchen", f"unknown kitchen {t.kitchen!r}"))
        errors.extend(key_errors(t, file, at))
        for pname, reason in check_values(recipe.params, t.params, what="the recipe"):
            errors.append(SpecError(file, f"{at}.params.{pname}", reason))
        patterns = _match_paths(t, at)
        found = [e for mat, m in patterns for e in match_errors(cat, m, file, mat)]
        errors.extend(found)
        if t.require == "monitors_pass" and not found:
            errors.extend(require_errors(cat, patterns, file, at))
