"""Kitchen params no recipe would use: a run takes only the params its recipe declares.

A kitchen's params reach the runs in it and in every kitchen below it (a domain's params
for a kitchen, that domain's runs there). A recipe runs in a kitchen when one of its
variations names that kitchen; in a kitchen no variation names (a sandbox) any recipe may be
run by name, so all of them would receive its params. A param none of those recipes
declares would be dropped from every run, so it is refused. While no recipe runs there at
all nothing is dropped; the apply that brings the recipes checks it.
"""

from __future__ import annotations

from sous_domain_registry.domain.catalog import Catalog, RecipeKey, domain_file, kitchen_file
from sous_domain_registry.domain.errors import SpecError
from sous_domain_registry.domain.kitchens import chain


def receivers(cat: Catalog, kitchen: str) -> list[RecipeKey]:
    """Return the recipes whose runs receive the params of `kitchen`, sorted."""
    below = {k for k in cat.kitchens if kitchen in chain(cat.kitchens, k)} | {kitchen}
    named = [
        key
        for key, recipe in cat.recipes.items()
        if any(v.kitchen in below for v in recipe.variations.values())
    ]
    return sorted(named or cat.recipes)


def _refusal(file: str, path: str, param: str, kitchen: str, keys: list[RecipeKey]) -> SpecError:
    names = ", ".join(f"{d}/{r}" for d, r in keys)
    return SpecError(
        file,
        path,
        f"no recipe run in kitchen {kitchen!r} declares param {param!r}, so every run would "
        f"drop it (recipes that would receive it: {names}); declare it in a recipe's params "
        "or remove it",
    )


def undeclared(cat: Catalog) -> list[SpecError]:
    """Return an error per kitchen param (or domain param for a kitchen) no receiver declares."""
    errors = []
    for name, spec in cat.kitchens.items():
        keys = receivers(cat, name)
        file = cat.file_of(f"kitchen:{name}", kitchen_file(name))
        for param in spec.params:
            if keys and not any(param in cat.recipes[k].params for k in keys):
                errors.append(_refusal(file, f"params.{param}", param, name, keys))
    for domain, d in cat.domains.items():
        file = cat.file_of(f"domain:{domain}", domain_file(domain))
        for name, override in d.kitchens.items():
            keys = [k for k in receivers(cat, name) if k[0] == domain]
            for param in override.params:
                if keys and not any(param in cat.recipes[k].params for k in keys):
                    path = f"kitchens.{name}.params.{param}"
                    errors.append(_refusal(file, path, param, name, keys))
    return errors
