"""Parse a folder of spec files (path → text) into a catalog, collecting every error.

Layout: `kitchens/<name>.yaml`, and per domain `<domain>/domain.yaml`,
`<domain>/recipes/*.yaml`, `<domain>/ingredients/*.yaml`, `<domain>/sql/*.sql`.
"""

from __future__ import annotations

import posixpath
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from sous_contracts.specs import DomainSpec, IngredientSpec, KitchenSpec, RecipeSpec
from sous_contracts.specs.yamlload import load_yaml
from sous_domain_registry.domain import secrets
from sous_domain_registry.domain.catalog import Catalog
from sous_domain_registry.domain.errors import SpecError, dotted

_KINDS: dict[str, type[BaseModel]] = {
    "kitchens": KitchenSpec,
    "domain": DomainSpec,
    "recipes": RecipeSpec,
    "ingredients": IngredientSpec,
}


def _kind_of(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) == 2 and parts[0] == "kitchens":
        return "kitchens"
    if len(parts) == 2 and parts[1] == "domain.yaml":
        return "domain"
    if len(parts) == 3 and parts[1] in ("recipes", "ingredients"):
        return parts[1]
    return None


def _inline_sql(
    data: Any, domain: str, files: dict[str, str], file: str, errors: list[SpecError]
) -> Any:
    """Replace each sql step's `file` with the file's text (relative to the domain folder)."""
    if not isinstance(data, dict) or not isinstance(data.get("steps"), dict):
        return data
    steps = dict(data["steps"])
    for name, step in steps.items():
        run = step.get("run") if isinstance(step, dict) else None
        if not isinstance(run, dict) or run.get("kind") != "sql" or "file" not in run:
            continue
        rel = run["file"]
        target = posixpath.normpath(posixpath.join(domain, str(rel)))
        if not target.startswith(f"{domain}/") or target not in files:
            errors.append(
                SpecError(file, f"steps.{name}.run.file", f"file not found in the domain: {rel!r}")
            )
            continue
        inlined = {k: v for k, v in run.items() if k != "file"}
        steps[name] = {**step, "run": {**inlined, "sql": files[target]}}
    return {**data, "steps": steps}


def parse(files: dict[str, str], *, with_domains: bool = True) -> tuple[Catalog, list[SpecError]]:
    """Parse every YAML file of a bundle; return the catalog and all errors.

    With `with_domains` false (recipes applied into a kitchen), a folder needs no domain.yaml.
    """
    cat, errors = Catalog(), []
    for path in sorted(files):
        if not path.endswith((".yaml", ".yml")):
            continue
        kind = _kind_of(path)
        if kind is None:
            errors.append(
                SpecError(
                    path,
                    "",
                    "not a spec location (expected kitchens/<k>.yaml, "
                    "<domain>/domain.yaml, <domain>/recipes/*.yaml or "
                    "<domain>/ingredients/*.yaml)",
                )
            )
            continue
        try:
            data = load_yaml(files[path])
        except yaml.YAMLError as exc:
            errors.append(SpecError(path, "", f"not valid YAML: {exc}".replace("\n", " ")))
            continue
        domain = path.split("/")[0]
        data = _inline_sql(data, domain, files, path, errors)
        try:
            spec = _KINDS[kind].model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                errors.append(SpecError(path, dotted(err["loc"]), _reason(err)))
            continue
        if isinstance(spec, DomainSpec | KitchenSpec):
            errors.extend(secrets.reference_errors(path, spec))
        _add(cat, kind, domain, path, spec, errors)
    for domain in {k[0] for k in cat.recipes} | {k[0] for k in cat.ingredients}:
        if with_domains and domain not in cat.domains:
            errors.append(
                SpecError(
                    f"{domain}/domain.yaml", "", "missing: every domain folder needs a domain.yaml"
                )
            )
    return cat, errors


def _reason(err: ErrorDetails) -> str:
    """Say what was expected; a connection that is not a reference is told so in words."""
    loc = err["loc"]
    if err["type"] == "string_pattern_mismatch" and loc[-1] == "ref" and "connections" in loc:
        return secrets.LITERAL
    return err["msg"]


def _add(
    cat: Catalog, kind: str, domain: str, path: str, spec: BaseModel, errors: list[SpecError]
) -> None:
    stem = posixpath.splitext(posixpath.basename(path))[0]
    if isinstance(spec, KitchenSpec):
        if spec.kitchen != stem:
            errors.append(
                SpecError(
                    path, "kitchen", f"name {spec.kitchen!r} must match the file name {stem!r}"
                )
            )
        cat.kitchens[spec.kitchen] = spec
        cat.files[f"kitchen:{spec.kitchen}"] = path
    elif isinstance(spec, DomainSpec):
        if spec.domain != domain:
            errors.append(
                SpecError(path, "domain", f"name {spec.domain!r} must match the folder {domain!r}")
            )
        cat.domains[domain] = spec
        cat.files[f"domain:{domain}"] = path
    elif isinstance(spec, RecipeSpec):
        if spec.recipe != stem:
            errors.append(
                SpecError(path, "recipe", f"name {spec.recipe!r} must match the file name {stem!r}")
            )
        cat.recipes[(domain, spec.recipe)] = spec
        cat.files[f"recipe:{domain}/{spec.recipe}"] = path
    elif isinstance(spec, IngredientSpec):
        key = (domain, spec.ingredient, spec.version)
        if key in cat.ingredients:
            errors.append(
                SpecError(path, "version", f"{spec.ingredient}@{spec.version} is defined twice")
            )
        cat.ingredients[key] = spec
        cat.files[f"ingredient:{domain}/{spec.ingredient}@{spec.version}"] = path
