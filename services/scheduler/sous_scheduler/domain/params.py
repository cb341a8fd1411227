"""Parameter resolution: layering, `${...}` placeholders and declared-type checks."""

from __future__ import annotations

from datetime import date
from typing import Any

from sous_contracts.specs.common import PLACEHOLDER as _PLACEHOLDER
from sous_contracts.specs.common import ParamSpec


class ParamError(ValueError):
    """A parameter is missing, undeclared or of the wrong type."""


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
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            return _lookup(whole.group(1), context)
        return _PLACEHOLDER.sub(lambda m: str(_lookup(m.group(1), context)), value)
    if isinstance(value, list):
        return [substitute(v, context) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, context) for k, v in value.items()}
    return value


_CHECKS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _typed(name: str, spec: ParamSpec, value: Any) -> Any:
    if spec.type == "date":
        if isinstance(value, date):
            return value.isoformat()
        try:
            date.fromisoformat(str(value))
        except ValueError:
            raise ParamError(f"param '{name}' must be a date (YYYY-MM-DD), got {value!r}") from None
        return str(value)
    if spec.type in ("integer", "number") and isinstance(value, bool):
        raise ParamError(f"param '{name}' must be {spec.type}, got boolean")
    if spec.type == "integer" and isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if spec.type == "number" and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if not isinstance(value, _CHECKS[spec.type]):
        raise ParamError(f"param '{name}' must be {spec.type}, got {type(value).__name__}")
    return value


def resolve_params(declared: dict[str, ParamSpec], *layers: dict[str, Any]) -> dict[str, Any]:
    """Merge layers (later wins) over declared defaults and check names and types.

    Layers, lowest first: kitchen < variation < command overrides < upstream event values.
    Names not declared by the recipe are refused, so a typo cannot pass silently; kitchen
    values are exempt, since a kitchen serves many recipes.
    """
    kitchen, *rest = layers if layers else ({},)
    merged: dict[str, Any] = {n: p.default for n, p in declared.items() if p.default is not None}
    merged.update({k: v for k, v in kitchen.items() if k in declared})
    for layer in rest:
        if unknown := sorted(set(layer) - set(declared)):
            raise ParamError(
                f"undeclared param(s) {unknown} (declared: {sorted(declared) or 'none'})"
            )
        merged.update(layer)
    if missing := sorted(n for n, p in declared.items() if p.required and n not in merged):
        raise ParamError(f"missing required param(s) {missing}")
    return {n: _typed(n, declared[n], v) for n, v in merged.items()}
