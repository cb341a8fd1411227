"""References resolve only in the store of their domain and kitchen; errors name no value."""

from __future__ import annotations

import pytest

from sous_common.references import (
    Scope,
    UnresolvedReference,
    name_problem,
    resolve,
    secret_variable,
)

SALES_DEV = Scope("sales", "dev")


def write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_files_of_the_kitchen_win_over_the_domain_and_variables(tmp_path) -> None:
    write(tmp_path / "sales" / "dev" / "wh", "postgresql://dev@h/db\n")
    write(tmp_path / "sales" / "wh", "postgresql://sales@h/db\n")
    write(tmp_path / "sales" / "only_domain", "domain-wide")
    environ = {
        "SOUS_SECRET_SALES__DEV__WH": "kitchen-variable",
        "SOUS_SECRET_SALES__WH": "domain-variable",
    }
    found = resolve("secret:wh", SALES_DEV, secrets_dir=tmp_path, environ=environ)
    assert found == "postgresql://dev@h/db"
    prod = resolve("secret:wh", Scope("sales", "prod"), secrets_dir=tmp_path, environ=environ)
    assert prod == "postgresql://sales@h/db"
    assert resolve("secret:only_domain", SALES_DEV, secrets_dir=tmp_path) == "domain-wide"


def test_a_kitchen_variable_wins_over_the_domain_file(tmp_path) -> None:
    write(tmp_path / "sales" / "wh", "domain-file")
    environ = {"SOUS_SECRET_SALES__DEV__WH": "kitchen-variable"}
    assert resolve("secret:wh", SALES_DEV, secrets_dir=tmp_path, environ=environ) == (
        "kitchen-variable"
    )


def test_variables_are_upper_case_with_dashes_and_dots_as_underscores() -> None:
    environ = {
        "SOUS_SECRET_SALES_EU__DEV_SAM__API_TOKEN_V2": "kitchen",
        "SOUS_SECRET_SALES_EU__WAREHOUSE": "domain",
    }
    scope = Scope("sales-eu", "dev-sam")
    assert resolve("secret:api-token.v2", scope, environ=environ) == "kitchen"
    assert resolve("secret:warehouse", scope, environ=environ) == "domain"
    assert secret_variable("sales", "dev", "warehouse") == "SOUS_SECRET_SALES__DEV__WAREHOUSE"
    assert secret_variable("sales", None, "warehouse") == "SOUS_SECRET_SALES__WAREHOUSE"


@pytest.mark.parametrize(
    ("domain", "kitchen", "name"),
    [("a__b", None, "x"), ("a", None, "b__x"), ("a_", None, "x"), ("a", None, "_x")],
)
def test_parts_that_would_be_ambiguous_have_no_variable(domain, kitchen, name) -> None:
    # a__b/x, a/b__x and kitchen b of a would all be SOUS_SECRET_A__B__X.
    assert secret_variable(domain, kitchen, name) is None


def test_env_references_read_the_same_store_never_the_process_environment(tmp_path) -> None:
    environ = {
        "SOUS_DOMAIN_REGISTRY_ADMIN_TOKEN": "admin-token-value",
        "SOUS_SECRET_SALES__WAREHOUSE": "postgresql://sales@h/db",
    }
    assert resolve("env:warehouse", SALES_DEV, environ=environ) == "postgresql://sales@h/db"
    with pytest.raises(UnresolvedReference) as caught:
        resolve("env:SOUS_DOMAIN_REGISTRY_ADMIN_TOKEN", SALES_DEV, environ=environ)
    message = str(caught.value)
    assert "admin-token-value" not in message
    assert "'env:SOUS_DOMAIN_REGISTRY_ADMIN_TOKEN'" in message
    assert "$SOUS_SECRET_SALES__DEV__SOUS_DOMAIN_REGISTRY_ADMIN_TOKEN" in message
    assert "never the service's environment" in message


def test_a_domain_cannot_read_another_domains_secret(tmp_path) -> None:
    write(tmp_path / "finance" / "ledger", "finance-ledger-dsn")
    environ = {"SOUS_SECRET_FINANCE__LEDGER": "finance-ledger-dsn"}
    with pytest.raises(UnresolvedReference) as caught:
        resolve("secret:ledger", SALES_DEV, secrets_dir=tmp_path, environ=environ)
    assert "finance-ledger-dsn" not in str(caught.value)
    assert str(caught.value) == (
        "reference 'secret:ledger' is not in the secret store of domain 'sales', kitchen 'dev' "
        f"(looked for {tmp_path}/sales/dev/ledger, $SOUS_SECRET_SALES__DEV__LEDGER, "
        f"{tmp_path}/sales/ledger, $SOUS_SECRET_SALES__LEDGER)"
    )


@pytest.mark.parametrize(
    "reference",
    ["secret:../finance/ledger", "secret:dev/../../finance/ledger", "secret:.hidden", "env:a/b"],
)
def test_names_that_are_paths_are_refused(tmp_path, reference) -> None:
    write(tmp_path / "finance" / "ledger", "finance-ledger-dsn")
    write(tmp_path / "sales" / ".hidden", "hidden-value")
    write(tmp_path / "sales" / "a" / "b", "nested-value")
    with pytest.raises(UnresolvedReference, match="no '/'"):
        resolve(reference, SALES_DEV, secrets_dir=tmp_path / "sales" / "dev", environ={})
    with pytest.raises(UnresolvedReference, match="no '/'"):
        resolve(reference, SALES_DEV, secrets_dir=tmp_path, environ={})


@pytest.mark.parametrize(
    ("scope", "message"),
    [(Scope("../finance", "dev"), "domain '../finance'"), (Scope("sales", "/x"), "kitchen '/x'")],
)
def test_scopes_that_are_not_names_are_refused(tmp_path, scope, message) -> None:
    with pytest.raises(UnresolvedReference, match=message):
        resolve("secret:wh", scope, secrets_dir=tmp_path, environ={})


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("secret:nope", "no secrets folder is configured"),
        ("postgresql://u:pw@h/db", "is not secret:NAME"),
        ("file:x", "'file:…' is not secret:NAME"),
        ("pw@h", "'…' is not secret:NAME"),
        ("secret:", "secret name '' must be"),
    ],
)
def test_unresolved_references(reference, message) -> None:
    with pytest.raises(UnresolvedReference, match=message) as caught:
        resolve(reference, SALES_DEV, environ={})
    assert "pw@" not in str(caught.value)  # a malformed reference may be a value


def test_name_problem() -> None:
    assert name_problem("warehouse") is None
    assert name_problem("api-token.v2") is None
    assert name_problem("a/b") is not None
    assert name_problem("..") is not None
