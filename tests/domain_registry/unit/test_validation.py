"""Every kind of invalid spec is refused with the file, the path inside it and the reason."""

from __future__ import annotations

import pytest

from tests.domain_registry.mesh import DAILY, REVENUE, assert_refusal, edited, errors_of, mesh_files


def test_example_mesh_is_valid():
    assert errors_of(mesh_files()) == []


CASES = [
    pytest.param(
        edited(DAILY, "needs: [ingest]", "needs: [lod]"),
        f"{DAILY}: steps.staging.needs[0]: unknown step 'lod' "
        "(steps: ingest, staging, model, publish)",
        id="unknown-step",
    ),
    pytest.param(
        edited(DAILY, "  ingest:\n    run:", "  ingest:\n    needs: [publish]\n    run:"),
        f"{DAILY}: steps.ingest.needs: cyclic DAG: ingest → publish → model → staging → ingest",
        id="cyclic-dag",
    ),
    pytest.param(
        edited(DAILY, "use: platform/publish_table@2", "use: platform/publish_table@3"),
        f"{DAILY}: steps.publish.use: unknown ingredient 'platform/publish_table@3' "
        "(versions: @1, @2)",
        id="ingredient-version",
    ),
    pytest.param(
        edited(
            DAILY,
            "  publish:\n    needs: [model]",
            "  nested:\n    recipe: payments/refund\n  publish:\n    needs: [model]",
        ),
        f"{DAILY}: steps.nested.recipe: unknown recipe 'payments/refund'",
        id="nested-recipe",
    ),
    pytest.param(
        edited(
            "payments/recipes/settle.yaml",
            "run: {kind: sql, connection: warehouse,",
            "run: {kind: sql, connection: lake,",
        ),
        "payments/recipes/settle.yaml: steps.settle.run.connection: unknown connection 'lake' "
        "of domain 'payments' (connections: provider, warehouse)",
        id="connection",
    ),
    pytest.param(
        edited(REVENUE, "    variation: prod\n", "    variation: nightly\n"),
        f"{REVENUE}: triggers[0].variation: unknown variation 'nightly' (variations: dev, prod)",
        id="variation",
    ),
    pytest.param(
        edited(REVENUE, "{domain: payments, recipe: settle}", "{domain: payments, recipe: pay}"),
        f"{REVENUE}: triggers[0].all[1].recipe: unknown recipe 'payments/pay'",
        id="trigger-upstream",
    ),
    pytest.param(
        edited(DAILY, "params: {min_rows: 1000000}", "params: {min_row: 1000000}"),
        f"{DAILY}: variations.canary.params.min_row: undeclared param 'min_row' of the recipe "
        "(declared: day, min_rows, publish, source_file, "
        "target_schema_suffix)",
        id="undeclared-param",
    ),
    pytest.param(
        edited(DAILY, "params: {min_rows: 1000000}", "params: {min_rows: many}"),
        f"{DAILY}: variations.canary.params.min_rows: param 'min_rows': expected integer, "
        "got str 'many'",
        id="mistyped-param",
    ),
    pytest.param(
        edited(DAILY, "with: {table: ", "with: {tabel: "),
        [
            f"{DAILY}: steps.publish.with: missing required param 'table' of ingredient "
            "platform/publish_table@2",
            f"{DAILY}: steps.publish.with.tabel: undeclared param 'tabel' of ingredient "
            "platform/publish_table@2 (declared: name, published_schema, table)",
        ],
        id="ingredient-param-missing",
    ),
    pytest.param(
        edited(DAILY, 'schedule: "0 2 * * *"', 'schedule: "0 25 * * *"'),
        f"{DAILY}: variations.prod.schedule.cron: invalid cron '0 25 * * *' (5 fields)",
        id="invalid-cron",
    ),
    pytest.param(
        edited(
            "sales/recipes/daily.yaml",
            "steps:\n",
            "triggers:\n  - on: {domain: marketing, recipe: dashboard}\n"
            "    variation: prod\nsteps:\n",
        ),
        f"{REVENUE}: triggers[0]: trigger cycle finance/revenue → marketing/dashboard → "
        "sales/daily → finance/revenue; set 'allow_cycle: true' and 'max_depth' on a trigger "
        "of the cycle to allow it",
        id="trigger-cycle",
    ),
    pytest.param(
        edited("kitchens/dev.yaml", "parent: prod", "parent: staging"),
        "kitchens/dev.yaml: parent: unknown kitchen 'staging'",
        id="kitchen-parent",
    ),
    pytest.param(
        edited(DAILY, "file: sql/model.sql", "file: sql/modle.sql"),
        f"{DAILY}: steps.model.run.file: file not found in the domain: 'sql/modle.sql'",
        id="sql-file",
    ),
    pytest.param(
        edited(DAILY, "retries: {max: 2,", "retries: {maxx: 2,"),
        f"{DAILY}: steps.ingest.retries.maxx: Extra inputs are not permitted",
        id="schema-typo",
    ),
]


@pytest.mark.parametrize(("files", "expected"), CASES)
def test_refusals_name_file_path_and_reason(files, expected):
    assert_refusal(files, expected)


def test_bad_yaml_is_refused_naming_the_file():
    (error,) = errors_of(edited(DAILY, "recipe: daily", "recipe: [daily"))
    assert error.startswith(f"{DAILY}: not valid YAML: while parsing a flow sequence"), error


def test_trigger_cycle_with_opt_in_and_depth_is_accepted():
    files = edited(
        DAILY,
        "steps:\n",
        "triggers:\n  - on: {domain: marketing, recipe: dashboard}\n"
        "    variation: prod\n    allow_cycle: true\n    max_depth: 3\nsteps:\n",
    )
    assert errors_of(files) == []


def test_opt_in_without_depth_is_refused():
    files = edited(
        DAILY,
        "steps:\n",
        "triggers:\n  - on: {domain: marketing, recipe: dashboard}\n"
        "    variation: prod\n    allow_cycle: true\nsteps:\n",
    )
    assert any("'allow_cycle: true' needs 'max_depth'" in e for e in errors_of(files))


def test_all_errors_are_collected():
    files = edited(DAILY, "needs: [ingest]", "needs: [lod]")
    files = edited(DAILY, 'schedule: "0 2 * * *"', 'schedule: "nope"', files)
    files = edited(REVENUE, "    variation: prod\n", "    variation: nightly\n", files)
    errors = errors_of(files)
    assert len(errors) == 3, errors
    assert [e.split(":")[0] for e in errors] == [REVENUE, DAILY, DAILY]


def _dropped(file: str, path: str, param: str, kitchen: str, recipes: str) -> str:
    return (
        f"{file}: {path}: no recipe run in kitchen {kitchen!r} declares param {param!r}, so "
        f"every run would drop it (recipes that would receive it: {recipes}); declare it in a "
        "recipe's params or remove it"
    )


ALL = "finance/revenue, marketing/dashboard, payments/settle, sales/daily"
NO_DEV_SETTLE = edited(
    "payments/recipes/settle.yaml", "  dev:\n    kitchen: dev\n    params: {batches: 2}\n", ""
)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            edited(
                "kitchens/dev.yaml",
                "  target_schema_suffix",
                "  schema_sufix: _x\n  target_schema_suffix",
            ),
            _dropped("kitchens/dev.yaml", "params.schema_sufix", "schema_sufix", "dev", ALL),
            id="typo",
        ),
        pytest.param(
            edited(
                "kitchens/dev.yaml",
                "  target_schema_suffix",
                "  batches: 3\n  target_schema_suffix",
                NO_DEV_SETTLE,
            ),
            _dropped(
                "kitchens/dev.yaml",
                "params.batches",
                "batches",
                "dev",
                "finance/revenue, marketing/dashboard, sales/daily",
            ),
            id="only-recipes-run-in-the-kitchen-or-below",
        ),
        pytest.param(
            edited(
                "sales/domain.yaml", "params: {source_file:", "params: {batches: 2, source_file:"
            ),
            _dropped(
                "sales/domain.yaml", "kitchens.dev.params.batches", "batches", "dev", "sales/daily"
            ),
            id="domain-params-for-a-kitchen",
        ),
    ],
)
def test_kitchen_params_no_recipe_run_there_declares_are_refused(files, expected):
    assert expected in errors_of(files)


@pytest.mark.parametrize(
    "files",
    [
        pytest.param(
            edited(
                "kitchens/dev.yaml",
                "  target_schema_suffix",
                "  min_rows: 3\n  target_schema_suffix",
            ),
            id="one-declares",
        ),
        pytest.param(
            edited(
                "kitchens/dev-sam.yaml",
                "  target_schema_suffix",
                "  batches: 1\n  target_schema_suffix",
            ),
            id="sandbox-any-recipe",
        ),
        pytest.param(
            {k: v for k, v in mesh_files().items() if k.startswith("kitchens/")},
            id="no-recipes-yet",
        ),
    ],
)
def test_kitchen_params_some_receiving_recipe_declares_are_accepted(files):
    assert errors_of(files) == []


WHEN = '    when: "params.publish && steps.model.tests.warnings == 0"'


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        (
            "stepz.model.tests.warnings == 0",
            "unknown name 'stepz' (names: params, steps, event, run)",
        ),
        (
            "steps.staging.outputs.rows > 0",
            "unknown step 'staging': a condition reads only the steps it needs (needs: model)",
        ),
        (
            "params.dry_run",
            "unknown param 'dry_run' (params: day, min_rows, publish, source_file, "
            "target_schema_suffix)",
        ),
        ("params.min_rows > 'x'", "type error: '>' does not apply to int and string"),
        ("params.min_rows", "must be a boolean, got int"),
        ("params.publish &&", "does not parse: params.publish && ^"),
    ],
    ids=["unknown-name", "unneeded-step", "unknown-param", "type-error", "not-boolean", "syntax"],
)
def test_a_faulty_condition_is_refused_at_its_path(condition: str, reason: str) -> None:
    files = edited(DAILY, WHEN, f'    when: "{condition}"')
    assert errors_of(files) == [f"{DAILY}: steps.publish.when: {reason}"]


def test_a_condition_may_read_a_step_level_param() -> None:
    files = edited(
        DAILY,
        "  model:\n    needs: [staging]\n",
        "  model:\n    needs: [staging]\n    params: {dry_run: false}\n"
        '    when: "!params.dry_run && steps.staging.outputs.rows_affected > 0"\n',
    )
    assert errors_of(files) == []
