"""Datasets on steps: refused at apply time with the file, the path and the reason."""

from __future__ import annotations

import pytest

from tests.domain_registry.mesh import DAILY, REVENUE, assert_refusal, edited, mesh_files

STAGING_IN = 'inputs: ["sales${params.target_schema_suffix}.raw_orders"]'


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            edited(DAILY, STAGING_IN, 'inputs: ["sales${params.suffix}.raw_orders"]'),
            f"{DAILY}: steps.staging.inputs[0]: ${{params.suffix}} does not resolve: no such "
            "param (declared: day, min_rows, publish, source_file, target_schema_suffix)",
            id="undeclared-param",
        ),
        pytest.param(
            edited(DAILY, STAGING_IN, 'inputs: ["sales${event.params.day}.raw"]'),
            f"{DAILY}: steps.staging.inputs[0]: dataset 'sales${{event.params.day}}.raw': only "
            "${params.x} placeholders are allowed, not ${event.params.day}",
            id="event-placeholder",
        ),
        pytest.param(
            edited(REVENUE, 'outputs: ["finance', 'outputs: ["fin ance'),
            f"{REVENUE}: steps.revenue.outputs[0]: dataset "
            "'fin ance${params.target_schema_suffix}.revenue': "
            "use letters, digits and _ . : / @ + = - "
            "(e.g. `finance.revenue` or `s3://bucket/key`)",
            id="bad-name",
        ),
    ],
)
def test_bad_datasets_are_refused(files: dict[str, str], expected: str) -> None:
    assert_refusal(files, expected)


def test_the_example_mesh_declares_its_chain_of_datasets() -> None:
    files = mesh_files()
    assert (
        'outputs: ["payments${params.target_schema_suffix}.settlements"]'
        in files["payments/recipes/settle.yaml"]
    )
    assert (
        'inputs: ["finance${params.target_schema_suffix}.revenue"]'
        in files["marketing/recipes/dashboard.yaml"]
    )
