"""Secrets stay out of the registry: connections are references to a domain's own store."""

from __future__ import annotations

import pytest

from sous_domain_registry.domain.secrets import LITERAL
from tests.domain_registry.mesh import edited, errors_of, mesh_files

SALES = "sales/domain.yaml"
WAREHOUSE = 'warehouse: {kind: postgres, ref: "secret:warehouse"}'
DSN = "postgresql://loader:hunter2@db.internal:5432/wh"


@pytest.mark.parametrize(
    ("path", "old", "new", "expected"),
    [
        pytest.param(
            SALES,
            WAREHOUSE,
            f'warehouse: {{kind: postgres, ref: "{DSN}"}}',
            f"{SALES}: connections.warehouse.ref: {LITERAL}",
            id="dsn-in-domain",
        ),
        pytest.param(
            SALES,
            "  dev:\n    params:",
            f'  dev:\n    connections: {{warehouse: {{ref: "{DSN}"}}}}\n    params:',
            f"{SALES}: kitchens.dev.connections.warehouse.ref: {LITERAL}",
            id="dsn-in-kitchen-override",
        ),
        pytest.param(
            "kitchens/dev.yaml",
            "parent: prod\n",
            "parent: prod\nconnections: {warehouse: {ref: hunter2}}\n",
            f"kitchens/dev.yaml: connections.warehouse.ref: {LITERAL}",
            id="password-in-kitchen",
        ),
        pytest.param(
            SALES,
            WAREHOUSE,
            'warehouse: {kind: postgres, ref: "secret:x/../../finance/warehouse"}',
            f"{SALES}: connections.warehouse.ref: secret name 'x/../../finance/warehouse' must "
            "be letters, digits, '_', '.' and '-' (no '/'), starting with a letter, digit or "
            "'_': it is looked up in a domain's store",
            id="path-as-name",
        ),
    ],
)
def test_a_connection_must_be_a_reference_to_the_domains_own_store(path, old, new, expected):
    errors = errors_of(edited(path, old, new))
    assert expected in errors, errors
    assert not any("hunter2" in e for e in errors)


def test_domains_that_would_share_secret_variables_are_refused():
    files = mesh_files()
    files["sales-eu/domain.yaml"] = "domain: sales-eu\n"
    files["sales_eu/domain.yaml"] = "domain: sales_eu\n"
    reason = (
        "domains 'sales-eu', 'sales_eu' would share the secret variables SOUS_SECRET_SALES_EU__*"
    )
    assert sorted(errors_of(files)) == [
        f"sales-eu/domain.yaml: domain: {reason}; rename one",
        f"sales_eu/domain.yaml: domain: {reason}; rename one",
    ]


def test_kitchens_that_would_share_secret_variables_are_refused():
    files = mesh_files()
    files["kitchens/dev_sam.yaml"] = "kitchen: dev_sam\nparent: dev\n"
    errors = errors_of(files)
    assert (
        "kitchens/dev_sam.yaml: kitchen: kitchens 'dev-sam', 'dev_sam' would share the secret "
        "variables SOUS_SECRET_<DOMAIN>__DEV_SAM__*; rename one"
    ) in errors, errors
