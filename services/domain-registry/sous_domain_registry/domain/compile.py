"""Compile a recipe for the scheduler: ingredients expanded, nested refs normalised.

SQL files are inlined when the bundle is parsed, so a compiled recipe is self-contained.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sous_contracts.specs import IngredientSpec, RecipeSpec, StepSpec
from sous_domain_registry.domain.catalog import Catalog
from sous_domain_registry.domain.monitors import with_monitor_tests
from sous_domain_registry.domain.validate import parse_ingredient_ref, resolve_recipe

_MAX_NESTING = 8


def content_hash(spec: dict[str, Any]) -> str:
    """Return `sha256:<hex>` of the canonical JSON of a spec."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _expand(
    cat: Catalog, domain: str, steps: dict[str, StepSpec], depth: int = 0
) -> dict[str, StepSpec]:
    if depth > _MAX_NESTING:
        raise ValueError("ingredients nest deeper than 8 levels")
    out: dict[str, StepSpec] = {}
    leaves_of: dict[str, list[str]] = {}
    for name, spec in steps.items():
        step = with_monitor_tests(cat, domain, spec)
        if step.use is None:
            changes: dict[str, Any] = {}
            if step.recipe is not None:
                d, r = resolve_recipe(step.recipe, domain)
                changes["recipe"] = f"{d}/{r}"
            out[name] = step.model_copy(update=changes)
            continue
        d, iname, version = parse_ingredient_ref(step.use)
        ing: IngredientSpec = cat.ingredients[(d, iname, version)]
        inner = _expand(cat, d, dict(ing.steps), depth + 1)
        defaults = {k: p.default for k, p in ing.params.items() if p.default is not None}
        needed = {n for s in inner.values() for n in s.needs}
        leaves_of[name] = [f"{name}__{n}" for n in inner if n not in needed]
        for iname_step, istep in inner.items():
            needs = [f"{name}__{n}" for n in istep.needs] if istep.needs else list(step.needs)
            params = {**defaults, **istep.params, **step.with_}
            tests = list(istep.tests)
            if f"{name}__{iname_step}" in leaves_of[name]:
                tests += [t for t in step.tests if t.name not in {x.name for x in tests}]
            update: dict[str, Any] = {"needs": needs, "params": params, "tests": tests}
            if not istep.needs and step.when is not None:
                # The use's condition guards where the ingredient starts; the rest of it
                # follows as the dependants of a skipped step do.
                inner_when = f" && ({istep.when})" if istep.when else ""
                update["when"] = f"({step.when}){inner_when}"
                update["if_needs_skipped"] = step.if_needs_skipped
            out[f"{name}__{iname_step}"] = istep.model_copy(update=update)
    if leaves_of:
        for name, step in list(out.items()):
            if any(n in leaves_of for n in step.needs):
                rewired: list[str] = []
                for n in step.needs:
                    rewired += [m for m in leaves_of.get(n, [n]) if m not in rewired]
                out[name] = step.model_copy(update={"needs": rewired})
    return out


def compile_recipe(cat: Catalog, domain: str, recipe: RecipeSpec) -> dict[str, Any]:
    """Return the compiled recipe as JSON (the changelog record's `spec`)."""
    steps = _expand(cat, domain, dict(recipe.steps))
    compiled = recipe.model_copy(update={"steps": steps})
    data: dict[str, Any] = compiled.model_dump(mode="json", by_alias=True)
    # Round-trip through the model so the record is exactly what a reader will parse.
    return RecipeSpec.model_validate(data).model_dump(mode="json", by_alias=True)
