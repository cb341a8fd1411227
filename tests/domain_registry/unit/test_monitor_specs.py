"""Monitors in the example mesh: refusals name the file, the path and the reason; a step's
reused monitor test is compiled into its tests."""

from __future__ import annotations

import pytest

from sous_domain_registry.domain.bundle import parse
from sous_domain_registry.domain.compile import compile_recipe
from tests.domain_registry.mesh import REVENUE, assert_refusal, edited, errors_of, mesh_files

FINANCE = "finance/domain.yaml"
DASHBOARD = "marketing/recipes/dashboard.yaml"
SALES = "sales/domain.yaml"


def test_a_step_reuses_a_monitor_test() -> None:
    cat, errors = parse(mesh_files())
    assert errors == []
    compiled = compile_recipe(cat, "finance", cat.recipes[("finance", "revenue")])
    step = compiled["steps"]["revenue"]
    assert [t["name"] for t in step["tests"]] == ["revenue_present", "one_row_per_day"]
    assert step["tests"][1]["check"]["kind"] == "unique"
    assert step["monitor_tests"] == []


REQUIRE = "    variation: prod\n    require: monitors_pass\n"

CASES = [
    pytest.param(
        edited(REVENUE, "monitor_tests: [revenue.one_row_per_day]", "monitor_tests: [rev.x]"),
        f"{REVENUE}: steps.revenue.monitor_tests[0]: unknown monitor 'finance/rev' "
        "(monitors: revenue)",
        id="unknown-monitor",
    ),
    pytest.param(
        edited(REVENUE, "[revenue.one_row_per_day]", "[revenue.rows]"),
        f"{REVENUE}: steps.revenue.monitor_tests[0]: unknown test 'rows' of monitor "
        "'finance/revenue' (tests: one_row_per_day)",
        id="unknown-monitor-test",
    ),
    pytest.param(
        edited(REVENUE, "[revenue.one_row_per_day]", "[sales/orders-daily.has_rows]"),
        None,
        id="another-domains-monitor-test",
    ),
    pytest.param(
        edited(SALES, 'schedule: "*/30 * * * *"', 'schedule: "*/30 * * *"'),
        f"{SALES}: monitors.orders-daily.schedule.cron: invalid cron '*/30 * * *' (5 fields)",
        id="bad-cron",
    ),
    pytest.param(
        edited(
            FINANCE,
            "on: {domain: finance, recipe: revenue}",
            "on: {domain: finance, recipe: revnue}",
        ),
        f"{FINANCE}: monitors.revenue.on.recipe: unknown recipe 'finance/revnue'",
        id="unknown-upstream",
    ),
    pytest.param(
        edited(FINANCE, "kitchen: prod", "kitchen: staging"),
        f"{FINANCE}: monitors.revenue.kitchen: unknown kitchen 'staging' (dev, dev-sam, prod)",
        id="unknown-kitchen",
    ),
    pytest.param(
        edited(SALES, "    connection: warehouse\n", "    connection: lake\n"),
        f"{SALES}: monitors.orders-daily.connection: unknown connection 'lake' of domain "
        "'sales' (connections: warehouse)",
        id="unknown-connection",
    ),
    pytest.param(
        edited(DASHBOARD, "    variation: prod\n", REQUIRE),
        None,
        id="require-with-a-monitor",
    ),
    pytest.param(
        edited(
            DASHBOARD,
            "    variation: prod\n",
            REQUIRE,
            edited(
                FINANCE,
                'dataset: "finance${params.target_schema_suffix}.revenue"',
                "dataset: finance.other",
            ),
        ),
        f"{DASHBOARD}: triggers[0].require: 'monitors_pass' but no monitor watches a dataset "
        "finance/revenue writes (declare one under `monitors:` of the domain that owns the "
        "dataset)",
        id="require-without-a-monitor",
    ),
]


@pytest.mark.parametrize(("files", "expected"), CASES)
def test_monitor_refusals(files: dict[str, str], expected: str | None) -> None:
    assert_refusal(files, expected)


def test_bad_dataset_and_missing_start_are_refused() -> None:
    bad = errors_of(
        edited(
            SALES,
            'dataset: "sales${params.target_schema_suffix}.orders_daily"',
            'dataset: "sales orders"',
        )
    )
    assert bad[0].startswith(f"{SALES}: monitors.orders-daily.dataset: ")
    assert "dataset 'sales orders': use letters, digits" in bad[0]
    both = errors_of(edited(SALES, 'schedule: "*/30 * * * *"', ""))
    assert both[0].startswith(f"{SALES}: monitors.orders-daily")
    assert "exactly one of 'schedule' or 'on'" in both[0]
