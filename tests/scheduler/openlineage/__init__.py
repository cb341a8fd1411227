"""The OpenLineage RunEvent shape the scheduler's events are checked against."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

_SCHEMA = Path(__file__).with_name("run_event.schema.json")


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(_SCHEMA.read_text())
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def problems(event: dict[str, Any]) -> list[str]:
    """Return why an event does not fit the RunEvent schema (empty when it fits)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<event>'}: {e.message}"
        for e in _validator().iter_errors(event)
    ]
