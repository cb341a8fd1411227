"""References resolve in the process that uses them; errors name the reference, never a value."""

from __future__ import annotations

import pytest

from sous_common.references import UnresolvedReference, resolve, secret_env_name


def test_env_and_secret_references(tmp_path) -> None:
    (tmp_path / "wh").write_text("postgresql://u:pw@h/db\n")
    environ = {"DSN": "postgresql://a@h/db", "SOUS_SECRET_API_TOKEN": "t0k"}
    assert resolve("env:DSN", environ=environ) == "postgresql://a@h/db"
    assert resolve("secret:wh", secrets_dir=tmp_path, environ=environ) == "postgresql://u:pw@h/db"
    assert resolve("secret:api-token", secrets_dir=tmp_path, environ=environ) == "t0k"
    assert secret_env_name("a.b-c") == "SOUS_SECRET_A_B_C"


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("env:MISSING", "$MISSING is not set"),
        ("secret:nope", "secret 'nope' is not available"),
        ("secret:../wh", "is not available"),
        ("postgresql://x", "is not env:VAR or secret:NAME"),
        ("file:x", "is not env:VAR or secret:NAME"),
    ],
)
def test_unresolved_references(tmp_path, reference, message) -> None:
    (tmp_path / "wh").write_text("secret-value")
    with pytest.raises(UnresolvedReference, match=message.replace("$", r"\$")) as caught:
        resolve(reference, secrets_dir=tmp_path / "sub", environ={})
    assert "secret-value" not in str(caught.value)
