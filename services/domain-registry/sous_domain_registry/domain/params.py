"""Checks of parameter values against their declarations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sous_contracts.specs import ParamSpec
from sous_contracts.specs.placeholders import PLACEHOLDER


def _is_date(value: Any) -> bool:
    if isinstance(value, dt.date):
        return True
    try:
        dt.date.fromisoformat(str(value))
    except ValueError:
        return False
    return True


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "date": _is_date,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def is_template(value: Any) -> bool:
    """True for values filled in at run time (`${event.params.day}`)."""
    return isinstance(value, str) and PLACEHOLDER.search(value) is not None


def type_error(spec: ParamSpec, value: Any) -> str | None:
    """Return why `value` does not fit `spec`, or None."""
    if value is None or is_template(value) or _CHECKS[spec.type](value):
        return None
    return f"expected {spec.type}, got {type(value).__name__} {value!r}"


def check_values(
    declared: dict[str, ParamSpec], values: dict[str, Any], *, what: str
) -> list[tuple[str, str]]:
    """Return (param, reason) for each undeclared or mistyped value."""
    out = []
    for name, value in values.items():
        spec = declared.get(name)
        if spec is None:
            known = ", ".join(sorted(declared)) or "none"
            out.append((name, f"undeclared param {name!r} of {what} (declared: {known})"))
        elif (why := type_error(spec, value)) is not None:
            out.append((name, f"param {name!r}: {why}"))
    return out


def check_defaults(declared: dict[str, ParamSpec]) -> list[tuple[str, str]]:
    """Return (param, reason) for each default that does not fit its declared type."""
    return [
        (name, f"default: {why}")
        for name, spec in declared.items()
        if (why := type_error(spec, spec.default)) is not None
    ]
