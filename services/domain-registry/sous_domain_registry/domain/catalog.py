"""The catalog: every spec of the mesh by key, and where each came from."""

from __future__ import annotations

from dataclasses import dataclass, field

from sous_contracts.specs import DomainSpec, IngredientSpec, KitchenSpec, RecipeSpec

RecipeKey = tuple[str, str]
"""(domain, recipe)."""
IngredientKey = tuple[str, str, int]
"""(domain, ingredient, version)."""


def domain_file(domain: str) -> str:
    """Return the conventional file of a domain spec."""
    return f"{domain}/domain.yaml"


def kitchen_file(kitchen: str) -> str:
    """Return the conventional file of a kitchen spec."""
    return f"kitchens/{kitchen}.yaml"


def recipe_file(domain: str, recipe: str) -> str:
    """Return the conventional file of a recipe spec."""
    return f"{domain}/recipes/{recipe}.yaml"


def ingredient_file(domain: str, name: str, version: int) -> str:
    """Return the conventional file of an ingredient spec."""
    return f"{domain}/ingredients/{name}@{version}.yaml"


@dataclass
class Catalog:
    """Specs of the mesh with their files; SQL files are already inlined."""

    domains: dict[str, DomainSpec] = field(default_factory=dict)
    """Domains by name."""
    kitchens: dict[str, KitchenSpec] = field(default_factory=dict)
    """Kitchens by name."""
    recipes: dict[RecipeKey, RecipeSpec] = field(default_factory=dict)
    """Recipes by (domain, name)."""
    ingredients: dict[IngredientKey, IngredientSpec] = field(default_factory=dict)
    """Ingredients by (domain, name, version)."""
    files: dict[str, str] = field(default_factory=dict)
    """Entity key (`recipe:sales/daily`) → file it came from."""

    def file_of(self, key: str, default: str) -> str:
        """Return the file an entity came from."""
        return self.files.get(key, default)

    def merged(self, bundle: Catalog) -> Catalog:
        """Return this catalog with the bundle applied.

        A domain present in the bundle is replaced whole (its recipes and ingredients not in
        the bundle are removed); kitchens in the bundle replace those of the same name.
        """
        replaced = set(bundle.domains)
        out = Catalog(
            domains={**self.domains, **bundle.domains},
            kitchens={**self.kitchens, **bundle.kitchens},
            recipes={k: v for k, v in self.recipes.items() if k[0] not in replaced},
            ingredients={k: v for k, v in self.ingredients.items() if k[0] not in replaced},
            files={**self.files, **bundle.files},
        )
        out.recipes.update(bundle.recipes)
        out.ingredients.update(bundle.ingredients)
        return out
