"""Reference resolution and the log redaction processor."""

from __future__ import annotations

import pytest

from sous_executor.adapters.references import References
from sous_executor.domain.outcome import SpecError
from sous_executor.redaction import LOG_REDACTOR, _redact


def test_env_and_secret_references(tmp_path) -> None:
    (tmp_path / "db").write_text("from-file\n")
    refs = References(
        tmp_path, {"WH": "dsn", "SOUS_SECRET_TOKEN": "from-env", "SOUS_SECRET_DB": "x"}
    )
    assert refs.resolve("env:WH") == "dsn"
    assert refs.resolve("secret:db") == "from-file"  # the folder wins over the environment
    assert refs.resolve("secret:token") == "from-env"
    assert References(None, {"SOUS_SECRET_DB": "x"}).secret("db") == "x"


@pytest.mark.parametrize(
    ("reference", "named"),
    [("env:NOPE", "NOPE"), ("secret:nope", "SOUS_SECRET_NOPE"), ("vault:x", "vault"), ("x", "x")],
)
def test_unresolvable_references_name_the_reference(tmp_path, reference: str, named: str) -> None:
    with pytest.raises(SpecError) as info:
        References(tmp_path, {}).resolve(reference)
    assert info.value.error.kind == "spec"
    assert named in info.value.error.message


def test_secret_names_cannot_escape_the_folder(tmp_path) -> None:
    (tmp_path / "outside").write_text("no")
    folder = tmp_path / "secrets"
    folder.mkdir()
    with pytest.raises(SpecError):
        References(folder, {}).secret("../outside")


def test_log_lines_are_redacted() -> None:
    LOG_REDACTOR.add(["hunter2-log-secret"])
    event = _redact(
        None, "info", {"event": "saw hunter2-log-secret", "n": 1, "d": {"k": "hunter2-log-secret"}}
    )
    assert event == {"event": "saw ***", "n": 1, "d": {"k": "***"}}
