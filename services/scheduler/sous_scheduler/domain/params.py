"""Parameter resolution: layering and declared-type checks (placeholders: contracts)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sous_contracts.specs.common import ParamSpec
from sous_contracts.specs.placeholders import ParamError

__all__ = ["ParamError", "resolve_params"]

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
