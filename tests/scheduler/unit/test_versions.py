"""The version of a recipe a run uses, along its kitchen's chain."""

from __future__ import annotations

from sous_contracts.specs import KitchenSpec, RecipeSpec
from sous_scheduler.domain.versions import pick, run_kitchen

KITCHENS = {
    "prod": KitchenSpec(kitchen="prod"),
    "dev": KitchenSpec(kitchen="dev", parent="prod"),
    "dev-alice": KitchenSpec(kitchen="dev-alice", parent="dev"),
    "dev-bob": KitchenSpec(kitchen="dev-bob", parent="dev"),
}


def test_first_version_from_leaf_to_root_else_base():
    versions = {None: "base", "dev": "dev's", "dev-alice": "alice's"}
    assert pick(versions, KITCHENS, "dev-alice") == "alice's"
    assert pick(versions, KITCHENS, "dev-bob") == "dev's"
    assert pick(versions, KITCHENS, "dev") == "dev's"
    assert pick(versions, KITCHENS, "prod") == "base"
    assert pick(versions, KITCHENS, None) == "base"
    assert pick(versions, KITCHENS, "unknown") == "base"
    assert pick({"dev-alice": "alice's"}, KITCHENS, "dev") is None


def test_a_cyclic_chain_ends():
    cyclic = {"a": KitchenSpec(kitchen="a", parent="b"), "b": KitchenSpec(kitchen="b", parent="a")}
    assert pick({None: "base"}, cyclic, "a") == "base"


def test_run_kitchen_is_the_named_one_else_the_variations():
    recipe = RecipeSpec.model_validate(
        {
            "recipe": "daily",
            "steps": {"s": {"run": {"kind": "shell", "argv": ["true"]}}},
            "variations": {"dev": {"kitchen": "dev-alice"}},
        }
    )
    assert run_kitchen("qa", "dev", recipe) == "qa"
    assert run_kitchen(None, "dev", recipe) == "dev-alice"
    assert run_kitchen(None, None, recipe) == "dev-alice"
    assert run_kitchen(None, "missing", recipe) is None
    assert run_kitchen(None, "dev", None) is None
