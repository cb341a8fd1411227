"""The compatibility gate flags what breaks readers, and only that."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sous_contracts import compat
from sous_contracts.compat import Change, check, compare, current_schemas, load_baseline
from sous_contracts.envelope import SCHEMA_MAJOR
from sous_contracts.steps import StepFinished

Schema = dict[str, Any]
RELEASED = current_schemas()


def schema(name: str) -> Schema:
    return copy.deepcopy(RELEASED[name][1])


def remove_worker_id(s: Schema) -> None:
    del s["properties"]["worker_id"]
    s["required"].remove("worker_id")


def rename_worker_id(s: Schema) -> None:
    s["properties"]["worker"] = s["properties"].pop("worker_id")
    s["required"] = [n if n != "worker_id" else "worker" for n in s["required"]]


def remove_nested_uri(s: Schema) -> None:
    del s["$defs"]["DatasetRef"]["properties"]["uri"]
    s["$defs"]["DatasetRef"]["required"] = []


def only_step_error(s: Schema) -> None:
    s["properties"]["error"] = {"$ref": "#/$defs/StepError"}


def only_null_error(s: Schema) -> None:
    s["properties"]["error"] = {"type": "null"}


def not_null_kitchen(s: Schema) -> None:
    s["properties"]["kitchen"] = s["properties"]["kitchen"]["anyOf"][0]


def setting(where: str, value: Any) -> Callable[[Schema], None]:
    """Return a change setting `value` at a dotted key path (digits index lists)."""
    keys: list[Any] = [int(k) if k.isdigit() else k for k in where.split(".")]

    def change(s: Schema) -> None:
        node = s
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    change.__name__ = where
    return change


VALUES = "$defs.Outputs.properties.values.additionalProperties"
BREAKING = [
    # (message, change to its schema, JSON path reported, words of the report)
    ("StepFinished", remove_worker_id, "$.worker_id", "field removed"),
    ("StepFinished", rename_worker_id, "$.worker_id", "field removed"),
    ("StepFinished", rename_worker_id, "$.worker", "required field added"),
    ("StepFinished", remove_nested_uri, "$.outputs.datasets[*].uri", "field removed"),
    (
        "StepFinished",
        setting("$defs.StepStatus.enum", ["succeeded", "failed"]),
        "$.status",
        'enum value "timed_out" removed',
    ),
    (
        "StepFinished",
        setting("$defs.StepError.required", ["kind", "message", "exit_code"]),
        "$.error.exit_code",
        "optional field made required",
    ),
    ("StepFinished", only_step_error, "$.error", "null no longer accepted"),
    ("StepFinished", only_null_error, "$.error", "StepError no longer accepted"),
    (
        "StepFinished",
        setting("properties.attempt.type", "string"),
        "$.attempt",
        "integer -> string",
    ),
    ("StepFinished", setting("properties.attempt.minimum", 2), "$.attempt", "minimum tightened"),
    (
        "StepFinished",
        setting("properties.worker_id.maxLength", 64),
        "$.worker_id",
        "maxLength added: 64",
    ),
    (
        "StepFinished",
        setting("properties.worker_id.enum", ["a"]),
        "$.worker_id",
        "values restricted",
    ),
    (
        "StepFinished",
        setting("properties.type.const", "StepEnded"),
        "$.type",
        'enum value "StepFinished" removed',
    ),
    ("StepFinished", setting(VALUES, {"type": "string"}), "$.outputs.values.*", "any -> string"),
    (
        "StepFinished",
        setting(VALUES, False),
        "$.outputs.values",
        "additional properties no longer allowed",
    ),
    ("StartOrderRun", not_null_kitchen, "$.kitchen", "null no longer accepted"),
    (
        "StartOrderRun",
        setting("required", ["order_run_id", "domain", "recipe", "kitchen"]),
        "$.kitchen",
        "optional field made required",
    ),
    (
        "StartOrderRun",
        setting("properties.domain.pattern", "^[a-z]{1,8}$"),
        "$.domain",
        "pattern changed",
    ),
    (
        "StartOrderRun",
        setting("properties.kitchen.anyOf.0.pattern", "^k$"),
        "$.kitchen",
        "pattern changed",
    ),
]


@pytest.mark.parametrize(("message", "change", "path", "words"), BREAKING)
def test_breaking_change_is_reported_at_its_path(
    message: str, change: Callable[[Schema], None], path: str, words: str
) -> None:
    new = schema(message)
    change(new)
    reported = [str(c) for c in compare(message, schema(message), new)]
    at_path = [line for line in reported if line.startswith(f"{message} {path}: ")]
    assert any(words in line for line in at_path), reported


# Small schemas for what pydantic's output does not show (type lists, oneOf).
TYPES = [
    ({"type": ["string", "null"]}, {"type": "string"}, "null|string -> string"),
    ({"type": "number"}, {"type": "integer"}, "number -> integer"),
    (
        {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        {"oneOf": [{"type": "string"}]},
        "integer no longer accepted",
    ),
    (
        {"type": "string", "enum": ["a", "b"]},
        {"type": "string", "enum": ["a"]},
        'enum value "b" removed',
    ),
    (
        {"type": "string", "maxLength": 9},
        {"type": "string", "maxLength": 8},
        "maxLength tightened: 9 -> 8",
    ),
]

WIDENING = [
    ({"type": "string"}, {"type": ["string", "null"]}),
    ({"type": "integer"}, {"type": "number"}),
    ({"type": "integer"}, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
    ({"oneOf": [{"type": "string"}]}, {"oneOf": [{"type": "string"}, {"type": "integer"}]}),
    ({"type": "string", "enum": ["a"]}, {"type": "string", "enum": ["a", "b"]}),
    ({"type": "string", "enum": ["a"]}, {"type": "string"}),
    ({"type": "string", "maxLength": 8}, {"type": "string", "maxLength": 9}),
    ({"type": "integer", "minimum": 1}, {"type": "integer", "minimum": 0}),
    ({"type": "string", "pattern": "^a$"}, {"type": "string"}),
]


def one_field(field: Schema) -> Schema:
    return {"type": "object", "properties": {"x": field}, "required": ["x"]}


def show(value: object) -> str | None:
    return json.dumps(value) if isinstance(value, dict) else None


@pytest.mark.parametrize(("old", "new", "words"), TYPES, ids=show)
def test_narrowed_type_is_reported(old: Schema, new: Schema, words: str) -> None:
    reported = [str(c) for c in compare("M", one_field(old), one_field(new))]
    assert len(reported) == 1, reported
    assert reported[0].startswith("M $.x: ")
    assert words in reported[0]


@pytest.mark.parametrize(("old", "new"), WIDENING, ids=show)
def test_widened_type_is_not_reported(old: Schema, new: Schema) -> None:
    assert compare("M", one_field(old), one_field(new)) == []


def tree(*fields: str) -> Schema:
    """Return a recursive schema: a node with string fields and optional child nodes."""
    properties: Schema = {name: {"type": "string"} for name in fields}
    properties["children"] = {"type": "array", "items": {"$ref": "#/$defs/Node"}}
    return {"$ref": "#/$defs/Node", "$defs": {"Node": {"type": "object", "properties": properties}}}


def test_recursive_models_are_followed_once() -> None:
    assert compare("M", tree("name", "size"), tree("name", "size")) == []
    assert compare("M", tree("name", "size"), tree("name")) == [
        Change("M", "$.size", "field removed (or renamed)")
    ]


def add_optional_field(s: Schema) -> None:
    s["properties"]["note"] = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}


def add_nested_optional_field(s: Schema) -> None:
    s["$defs"]["DatasetRef"]["properties"]["bytes"] = {"type": "integer", "default": 0}


def make_worker_id_optional(s: Schema) -> None:
    s["required"].remove("worker_id")


def remove_step_pattern(s: Schema) -> None:
    del s["properties"]["step"]["pattern"]


STATUSES = ["succeeded", "failed", "cancelled", "timed_out", "skipped"]
ERROR_OR_TEXT = [{"$ref": "#/$defs/StepError"}, {"type": "string"}, {"type": "null"}]
NOT_BREAKING = [  # changes to StepFinished's schema
    add_optional_field,
    add_nested_optional_field,
    make_worker_id_optional,
    setting("$defs.StepStatus.enum", STATUSES),
    setting("properties.attempt.type", "number"),
    setting("properties.attempt.minimum", 0),
    remove_step_pattern,
    setting("properties.worker_id.description", "Which executor replica ran it."),
    setting("properties.error.anyOf", ERROR_OR_TEXT),
]


@pytest.mark.parametrize("change", NOT_BREAKING)
def test_compatible_change_is_not_reported(change: Callable[[Schema], None]) -> None:
    new = schema("StepFinished")
    change(new)
    assert compare("StepFinished", schema("StepFinished"), new) == []


def test_checked_in_baseline_matches_the_code() -> None:
    assert check(RELEASED, load_baseline()) == [], "see contracts/README.md"


def test_a_message_type_removed_from_the_catalog_is_reported() -> None:
    current = {k: v for k, v in RELEASED.items() if k != "CancelStep"}
    assert check(current, load_baseline()) == [
        Change("CancelStep", "$", "message type removed from the catalog")
    ]


CURRENT = SCHEMA_MAJOR
NEXT = SCHEMA_MAJOR + 1


class StepFinishedNext(StepFinished):
    """StepFinished at the next major: `host` is new and required, which a minor could not add."""

    schema_version: int = NEXT
    host: str


def test_major_version_is_the_default_of_schema_version() -> None:
    assert compat.major_version(StepFinished) == CURRENT
    assert compat.major_version(StepFinishedNext) == NEXT


def gate(*argv: str) -> int:
    return compat.main(list(argv))


def test_raising_the_major_needs_a_new_baseline_and_keeps_the_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for older in range(1, CURRENT):  # majors already released stay, as the gate demands
        name = f"StepFinished.v{older}.json"
        (tmp_path / name).write_text((compat.BASELINE_DIR / name).read_text())
    monkeypatch.setattr(compat, "BASELINE_DIR", tmp_path)
    monkeypatch.setattr(compat, "MESSAGE_TYPES", {"StepFinished": StepFinished})
    assert gate() == 1
    assert f"StepFinished $: no baseline for major {CURRENT}: run --update" in (
        capsys.readouterr().err
    )
    assert gate("--update") == 0
    assert gate() == 0

    monkeypatch.setattr(compat, "MESSAGE_TYPES", {"StepFinished": StepFinishedNext})
    assert gate() == 1
    err = capsys.readouterr().err
    assert f"StepFinished $: no baseline for major {NEXT}" in err
    assert "host" not in err, "a new major is not compared with the old one"
    assert gate("--update") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"StepFinished.v{major}.json" for major in range(1, NEXT + 1)
    ]
    assert gate() == 0

    (tmp_path / f"StepFinished.v{CURRENT}.json").unlink()
    assert gate() == 1
    err = capsys.readouterr().err
    assert f"StepFinished $: baseline of major {CURRENT} deleted" in err
    assert "readers must handle both majors" in err


def test_update_refuses_a_breaking_change_within_a_major(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(compat, "BASELINE_DIR", tmp_path)
    monkeypatch.setattr(compat, "MESSAGE_TYPES", {"StepFinished": StepFinished})
    released = schema("StepFinished")
    released["properties"]["retired"] = {"type": "string"}
    (tmp_path / f"StepFinished.v{CURRENT}.json").write_text(json.dumps(released))
    assert gate("--update") == 1
    assert "StepFinished $.retired: field removed (or renamed)" in capsys.readouterr().err
    assert json.loads((tmp_path / f"StepFinished.v{CURRENT}.json").read_text()) == released


def test_a_type_first_released_at_a_later_major_needs_no_lower_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(compat, "BASELINE_DIR", tmp_path)
    monkeypatch.setattr(compat, "MESSAGE_TYPES", {"StepFinished": StepFinishedNext})
    assert gate() == 1
    assert "no baseline for major" in capsys.readouterr().err
    assert gate("--update") == 0
    assert [p.name for p in tmp_path.iterdir()] == [f"StepFinished.v{NEXT}.json"]
    assert gate() == 0
