"""The checked-in AsyncAPI document and JSON Schemas match what the code generates."""

from __future__ import annotations

from pathlib import Path

from sous_contracts import MESSAGE_TYPES
from sous_contracts.schema_export import asyncapi, stale, write


def test_checked_in_files_are_fresh() -> None:
    assert stale() == [], "run `make schemas` and commit the result"


def test_stale_detects_a_changed_file(tmp_path: Path) -> None:
    write(tmp_path)
    assert stale(tmp_path) == []
    target = tmp_path / "messages" / "StepFinished.schema.json"
    target.write_text(target.read_text().replace("worker_id", "worker"))
    (tmp_path / "messages" / "Gone.schema.json").write_text("{}")
    assert {p.name for p in stale(tmp_path)} == {"StepFinished.schema.json", "Gone.schema.json"}


def test_asyncapi_lists_every_message_with_docs() -> None:
    doc = asyncapi()
    assert set(doc["components"]["messages"]) == set(MESSAGE_TYPES)
    finished = doc["components"]["schemas"]["StepFinished"]["properties"]
    assert "Executor replica" in finished["worker_id"]["description"]
