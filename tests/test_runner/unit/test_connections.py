"""Connection choice, reference resolution and redaction of secrets."""

from __future__ import annotations

import pytest

from sous_common.references import Scope
from sous_test_runner.adapters.connections import ConnectionProblem, choose, redact, resolve
from sous_test_runner.adapters.sqltext import table


def test_choose_named_default_or_only() -> None:
    assert choose("wh", {"wh": "secret:a", "default": "secret:b"}) == "wh"
    assert choose(None, {"wh": "secret:a", "default": "secret:b"}) == "default"
    assert choose(None, {"wh": "secret:a"}) == "wh"
    with pytest.raises(ConnectionProblem, match="no connection: name one with `connection:`"):
        choose(None, {"a": "secret:a", "b": "secret:b"})
    with pytest.raises(ConnectionProblem, match="unknown connection 'x'"):
        choose("x", {"a": "secret:a"})


SALES_DEV = Scope("sales", "dev")


def test_resolve_in_the_store_of_the_tested_domain_and_kitchen(tmp_path) -> None:
    (tmp_path / "sales" / "dev").mkdir(parents=True)
    (tmp_path / "sales" / "dev" / "warehouse").write_text("postgresql://u:pw@h/db\n")
    (tmp_path / "finance").mkdir()
    (tmp_path / "finance" / "ledger").write_text("postgresql://f@h/db")
    env = {"WH": "postgresql://a@h/db", "SOUS_SECRET_SALES__OTHER_DB": "postgresql://b@h/db"}
    found = resolve("secret:warehouse", SALES_DEV, secrets_dir=tmp_path, env=env)
    assert found == "postgresql://u:pw@h/db"
    found = resolve("secret:other-db", SALES_DEV, secrets_dir=tmp_path, env=env)
    assert found == "postgresql://b@h/db"
    with pytest.raises(ConnectionProblem, match="secret store of domain 'sales'"):
        resolve("env:WH", SALES_DEV, secrets_dir=None, env=env)
    with pytest.raises(ConnectionProblem, match="secret store of domain 'sales'"):
        resolve("secret:ledger", SALES_DEV, secrets_dir=tmp_path, env=env)
    with pytest.raises(ConnectionProblem, match="no '/'"):
        resolve("secret:../finance/ledger", SALES_DEV, secrets_dir=tmp_path, env=env)
    with pytest.raises(ConnectionProblem, match="is not secret:NAME"):
        resolve("postgresql://x", SALES_DEV, secrets_dir=None, env=env)


def test_redact_removes_dsn_and_password() -> None:
    dsn = "postgresql://user:s3cret@db:5432/x"
    text = redact(f"failed for {dsn}; auth s3cret rejected", dsn)
    assert "s3cret" not in text
    assert "<connection>" in text


def test_table_names_are_quoted() -> None:
    assert table("sales.orders") == '"sales"."orders"'
    assert table('x"; DROP TABLE y; --') == '"x""; DROP TABLE y; --"'
