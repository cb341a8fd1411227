"""`${a.b}` placeholders in spec values: the one resolver every service uses."""

from __future__ import annotations

import re
from typing import Any

PLACEHOLDER = re.compile(r"\$\{([a-zA-Z_][\w.-]*)\}")
"""A `${path}` reference; `path` is dotted (`params.day`, `event.outputs.rows`)."""


class ParamError(ValueError):
    """A parameter is missing, undeclared, of the wrong type, or a placeholder does not resolve."""


def references(value: Any) -> list[str]:
    """Return the paths a value's placeholders name, in order (strings, lists and dicts)."""
    if isinstance(value, str):
        return [m.group(1) for m in PLACEHOLDER.finditer(value)]
    if isinstance(value, list):
        return [p for v in value for p in references(v)]
    if isinstance(value, dict):
        return [p for v in value.values() for p in references(v)]
    return []


def _lookup(path: str, context: dict[str, Any]) -> Any:
    value: Any = context
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ParamError(f"placeholder ${{{path}}} does not resolve")
        value = value[part]
    return value


def substitute(value: Any, context: dict[str, Any]) -> Any:
    """Replace `${a.b}` placeholders in strings, lists and dicts, recursively.

    A string that is exactly one placeholder takes the value's own type.
    """
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole:
            return _lookup(whole.group(1), context)
        return PLACEHOLDER.sub(lambda m: str(_lookup(m.group(1), context)), value)
    if isinstance(value, list):
        return [substitute(v, context) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, context) for k, v in value.items()}
    return value
