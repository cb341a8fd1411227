"""The version of a recipe a run uses, along its kitchen's chain."""

from __future__ import annotations

from sous_contracts.specs import KitchenSpec, RecipeSpec
from sous_scheduler.domain.versions import pick, run_kitchen, scheduled

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


def nightly(**variations: tuple[str, str | None]) -> RecipeSpec:
    """A recipe with these variations: name=(kitchen, cron or None)."""
    return RecipeSpec.model_validate(
        {
            "recipe": "nightly",
            "steps": {"s": {"run": {"kind": "noop"}}},
            "variations": {
                name: {"kitchen": kitchen, **({"schedule": cron} if cron else {})}
                for name, (kitchen, cron) in variations.items()
            },
        }
    )


def test_a_schedule_fires_in_the_version_its_kitchen_runs():
    versions = {
        # prod and dev run the base; alice's version copied both, plus a schedule of its own.
        None: nightly(prod=("prod", "0 3 * * *"), dev=("dev", "0 4 * * *"), off=("prod", None)),
        "dev-alice": nightly(
            prod=("prod", "0 3 * * *"), dev=("dev", "0 5 * * *"), mine=("dev-alice", "*/5 * * * *")
        ),
        "dev-bob": nightly(dev=("dev", "0 6 * * *")),  # names a kitchen that runs another version
    }
    found = {
        (s.schedule_id, s.kitchen, s.schedule.cron) for s in scheduled("s", "r", versions, KITCHENS)
    }
    assert found == {
        ("s/r/prod", "prod", "0 3 * * *"),
        ("s/r/dev", "dev", "0 4 * * *"),
        ("s/r/mine@dev-alice", "dev-alice", "*/5 * * * *"),
    }


def test_a_kitchen_s_version_takes_over_the_schedules_of_its_kitchen():
    versions = {
        None: nightly(prod=("prod", "0 3 * * *"), dev=("dev", "0 4 * * *")),
        # dev's version dropped its cron; its copy of prod's variation is not prod's.
        "dev": nightly(prod=("prod", "0 3 * * *"), dev=("dev", None)),
    }
    found = [s.schedule_id for s in scheduled("s", "r", versions, KITCHENS)]
    assert found == ["s/r/prod"]
    only_alice = {"dev-alice": nightly(mine=("dev-alice", "0 1 * * *"))}
    [alone] = scheduled("s", "r", only_alice, KITCHENS)
    assert (alone.schedule_id, alone.variation, alone.kitchen) == (
        "s/r/mine@dev-alice",
        "mine",
        "dev-alice",
    )
