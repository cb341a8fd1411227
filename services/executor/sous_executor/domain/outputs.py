"""Reading what a step published: the outputs file and python return values."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from sous_contracts.common import Outputs


class OutputsError(ValueError):
    """The outputs a step wrote cannot be read."""


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_outputs_file(text: str) -> Outputs:
    """Parse an outputs file: a JSON object, or `key=value` lines (values JSON when possible).

    Raises:
        OutputsError: the file is neither form.
    """
    stripped = text.strip()
    if not stripped:
        return Outputs()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise OutputsError(f"outputs file is not valid JSON: {exc}") from exc
        return from_mapping(data)
    values: dict[str, Any] = {}
    for number, raw in enumerate(stripped.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise OutputsError(f"outputs file line {number} is not key=value: {line[:80]!r}")
        values[key.strip()] = _value(value.strip())
    return Outputs(values=values)


def from_mapping(data: Any) -> Outputs:
    """Read `{"values": …, "datasets": […]}`, or treat any other dict as plain values.

    Raises:
        OutputsError: not a dict, or datasets of the wrong shape.
    """
    if data is None:
        return Outputs()
    if not isinstance(data, dict):
        raise OutputsError(f"outputs must be a JSON object, got {type(data).__name__}")
    try:
        if set(data) <= {"values", "datasets"} and data:
            return Outputs.model_validate(data)
        return Outputs(values=data)
    except ValidationError as exc:
        raise OutputsError(f"outputs are malformed: {exc.errors(include_url=False)}") from exc


def merge(first: Outputs, second: Outputs) -> Outputs:
    """Return `first` updated by `second` (values overwrite, datasets add up)."""
    return Outputs(
        values={**first.values, **second.values}, datasets=[*first.datasets, *second.datasets]
    )
