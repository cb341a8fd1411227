"""The kitchen hierarchy: overrides apply root first, the domain's last in each kitchen."""

from __future__ import annotations

from sous_contracts.specs import ConnectionSpec, DomainSpec, KitchenOverride, KitchenSpec
from sous_domain_registry.domain.kitchens import chain, resolve

KITCHENS = {
    "prod": KitchenSpec(kitchen="prod", params={"suffix": "", "threads": 8}),
    "dev": KitchenSpec(
        kitchen="dev",
        parent="prod",
        params={"suffix": "_dev"},
        connections={"warehouse": ConnectionSpec(ref="secret:dev_warehouse")},
    ),
    "dev-alice": KitchenSpec(kitchen="dev-alice", parent="dev", params={"threads": 1}),
}
SALES = DomainSpec(
    domain="sales",
    connections={
        "warehouse": ConnectionSpec(ref="secret:warehouse"),
        "shop": ConnectionSpec(kind="http", ref="secret:shop"),
    },
    kitchens={"dev": KitchenOverride(params={"source_file": "small.csv", "suffix": "_sales_dev"})},
)


def test_chain_runs_from_the_root():
    assert chain(KITCHENS, "dev-alice") == ["prod", "dev", "dev-alice"]
    assert chain(KITCHENS, "prod") == ["prod"]
    assert chain(KITCHENS, "nowhere") == []


def test_overrides_apply_root_first_and_domain_last_per_kitchen():
    r = resolve(KITCHENS, "dev-alice", SALES)
    assert r.params == {"suffix": "_sales_dev", "threads": 1, "source_file": "small.csv"}
    assert r.connections["warehouse"].ref == "secret:dev_warehouse"
    assert r.connections["shop"].ref == "secret:shop"
    prod = resolve(KITCHENS, "prod", SALES)
    assert prod.params == {"suffix": "", "threads": 8}
    assert prod.connections["warehouse"].ref == "secret:warehouse"


def test_a_parent_cycle_does_not_loop():
    looped = {
        "a": KitchenSpec(kitchen="a", parent="b"),
        "b": KitchenSpec(kitchen="b", parent="a"),
    }
    assert chain(looped, "a") == ["b", "a"]
