"""Connection choice, reference resolution and redaction of secrets."""

from __future__ import annotations

import pytest

from sous_test_runner.adapters.connections import ConnectionProblem, choose, redact, resolve
from sous_test_runner.adapters.sqltext import table


def test_choose_named_default_or_only() -> None:
    assert choose("wh", {"wh": "env:A", "default": "env:B"}) == "wh"
    assert choose(None, {"wh": "env:A", "default": "env:B"}) == "default"
    assert choose(None, {"wh": "env:A"}) == "wh"
    with pytest.raises(ConnectionProblem, match="no connection: name one with `connection:`"):
        choose(None, {"a": "env:A", "b": "env:B"})
    with pytest.raises(ConnectionProblem, match="unknown connection 'x'"):
        choose("x", {"a": "env:A"})


def test_resolve_env_and_secrets(tmp_path) -> None:
    (tmp_path / "warehouse").write_text("postgresql://u:pw@h/db\n")
    env = {"WH": "postgresql://a@h/db", "SOUS_SECRET_OTHER_DB": "postgresql://b@h/db"}
    assert resolve("env:WH", secrets_dir=tmp_path, env=env) == "postgresql://a@h/db"
    assert resolve("secret:warehouse", secrets_dir=tmp_path, env=env) == "postgresql://u:pw@h/db"
    assert resolve("secret:other-db", secrets_dir=tmp_path, env=env) == "postgresql://b@h/db"
    with pytest.raises(ConnectionProblem, match="is not set"):
        resolve("env:MISSING", secrets_dir=None, env=env)
    with pytest.raises(ConnectionProblem, match="not available"):
        resolve("secret:../etc/passwd", secrets_dir=tmp_path, env=env)
    with pytest.raises(ConnectionProblem, match="is not env:VAR or secret:NAME"):
        resolve("postgresql://x", secrets_dir=None, env=env)


def test_redact_removes_dsn_and_password() -> None:
    dsn = "postgresql://user:s3cret@db:5432/x"
    text = redact(f"failed for {dsn}; auth s3cret rejected", dsn)
    assert "s3cret" not in text
    assert "<connection>" in text


def test_table_names_are_quoted() -> None:
    assert table("sales.orders") == '"sales"."orders"'
    assert table('x"; DROP TABLE y; --') == '"x""; DROP TABLE y; --"'
