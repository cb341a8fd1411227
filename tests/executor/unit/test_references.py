"""Reference resolution and the log redaction processor."""

from __future__ import annotations

import pytest

from sous_common.references import Scope
from sous_executor.adapters.references import References
from sous_executor.domain.outcome import SpecError
from sous_executor.redaction import LOG_REDACTOR, _redact

SALES_DEV = Scope("sales", "dev")


def test_references_resolve_in_the_steps_domain_and_kitchen(tmp_path) -> None:
    (tmp_path / "sales" / "dev").mkdir(parents=True)
    (tmp_path / "sales" / "dev" / "db").write_text("from-kitchen-file\n")
    refs = References(
        tmp_path,
        {"SOUS_SECRET_SALES__TOKEN": "from-env", "SOUS_SECRET_SALES__DB": "x", "WH": "dsn"},
    )
    assert refs.resolve("secret:db", SALES_DEV) == "from-kitchen-file"
    assert refs.resolve("secret:db", Scope("sales", "prod")) == "x"
    assert refs.resolve("secret:token", SALES_DEV) == "from-env"
    assert refs.resolve("env:token", SALES_DEV) == "from-env"
    assert References(None, {"SOUS_SECRET_SALES__DB": "x"}).secret("db", SALES_DEV) == "x"


@pytest.mark.parametrize(
    ("reference", "named"),
    [
        ("env:WH", "$SOUS_SECRET_SALES__WH"),
        ("secret:nope", "SOUS_SECRET_SALES__DEV__NOPE"),
        ("vault:x", "vault"),
        ("x", "is not secret:NAME"),
    ],
)
def test_unresolvable_references_name_the_reference(tmp_path, reference: str, named: str) -> None:
    with pytest.raises(SpecError) as info:
        References(tmp_path, {"WH": "dsn"}).resolve(reference, SALES_DEV)
    assert info.value.error.kind == "spec"
    assert named in info.value.error.message
    assert "dsn" not in info.value.error.message


def test_secret_names_cannot_escape_the_folder(tmp_path) -> None:
    (tmp_path / "outside").write_text("no")
    folder = tmp_path / "secrets"
    (folder / "sales").mkdir(parents=True)
    with pytest.raises(SpecError):
        References(folder, {}).secret("../../outside", SALES_DEV)


def test_log_lines_are_redacted() -> None:
    LOG_REDACTOR.add(["hunter2-log-secret"])
    event = _redact(
        None, "info", {"event": "saw hunter2-log-secret", "n": 1, "d": {"k": "hunter2-log-secret"}}
    )
    assert event == {"event": "saw ***", "n": 1, "d": {"k": "***"}}
