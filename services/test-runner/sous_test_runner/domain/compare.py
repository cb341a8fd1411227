"""Operators of checks, with numbers from SQL, JSON and params normalised before comparing."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
"""Every operator a check may name."""


class NotComparable(ValueError):
    """Two values cannot be compared by the operator (e.g. text against a number)."""


def is_number(value: Any) -> bool:
    """Return True for ints, floats and Decimals (booleans are not numbers here)."""
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def as_number(value: Any) -> int | float:
    """Return an int or float for a number or numeric text; raise ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            return float(text)
    raise ValueError(f"{value!r} is not a number")


def jsonable(value: Any) -> Any:
    """Return a JSON-friendly form of a value read from a database or a callable."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return as_number(value) if value.is_finite() else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)


def _normalise(left: Any, right: Any) -> tuple[Any, Any]:
    if is_number(left) or is_number(right):
        try:
            return as_number(left), as_number(right)
        except ValueError:
            return left, right
    return left, right


def compare(left: Any, op: str, right: Any) -> bool:
    """Return `left <op> right`; numbers (and numeric text) compare numerically.

    Raises:
        NotComparable: when the operator is unknown or the values do not compare.
    """
    fn = OPERATORS.get(op)
    if fn is None:
        raise NotComparable(f"unknown operator {op!r}; use one of {' '.join(OPERATORS)}")
    a, b = _normalise(left, right)
    if op not in ("==", "!=") and (a is None or b is None):
        raise NotComparable(f"cannot compare {a!r} {op} {b!r}")
    try:
        return bool(fn(a, b))
    except TypeError as exc:
        raise NotComparable(f"cannot compare {a!r} {op} {b!r}") from exc


def describe(label: str, left: Any, op: str, right: Any) -> str:
    """Return a message such as `rows 1200 > 0`."""
    return f"{label} {jsonable(left)} {op} {jsonable(right)}"
