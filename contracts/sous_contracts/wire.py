r"""What the wire accepts: strict JSON with bounded size, depth and numbers, storable text.

Every reader of Sous messages and every REST body goes through these checks, so a value
that PostgreSQL's `jsonb` or another JSON reader would choke on (NaN, `\\u0000`, a lone
surrogate, a 5,000-digit integer, JSON nested 200,000 deep) is refused at the edge with the
place it was found, never half-stored or crashing a service behind the edge.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_MESSAGE_BYTES = 1_000_000
"""Largest message value a reader accepts (the broker's default `max.message.bytes`)."""
MAX_DEPTH = 32
"""Deepest nesting of objects and arrays anywhere in a message or a params value."""
MAX_INT_DIGITS = 20
"""Longest integer literal accepted (64-bit values have at most 20 characters)."""
MAX_PARAMS_BYTES = 65_536
"""Largest `params` (or outputs `values`) object, measured as compact JSON."""


class WireError(ValueError):
    """A value cannot travel: the message names the place and what is wrong."""


def _no_constant(name: str) -> Any:
    raise WireError(f"{name} is not JSON (only finite numbers are allowed)")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise WireError(f"integer of {len(text)} digits is longer than {MAX_INT_DIGITS} digits")
    return int(text)


def loads(raw: bytes | str) -> Any:
    """Parse strict JSON: UTF-8 only, no NaN/Infinity, bounded integers and depth, storable text.

    Raises:
        WireError: what is wrong and, for values, where (`params.day`).
    """
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WireError(f"not UTF-8: byte {exc.start}: {exc.reason}") from None
    else:
        text = raw
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_int=_bounded_int)
    except RecursionError:
        raise WireError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise WireError(f"not JSON: {exc}") from None
    if _may_need_walk(text):
        check(value)
    return value


def _may_need_walk(text: str) -> bool:
    # A cheap scan in C first: most messages cannot be deep and carry no escapes.
    return (
        text.count("{") + text.count("[") > MAX_DEPTH
        or "\\u0000" in text
        or "\\ud" in text
        or "\\uD" in text
    )


def check(value: Any, where: str = "", depth: int = 0) -> None:
    r"""Refuse what JSON readers and `jsonb` cannot hold, naming the first place found.

    Raises:
        WireError: NaN or infinite number, `\\u0000`, unpaired surrogate, or nested too deep.
    """
    if isinstance(value, str):
        _check_text(value, where)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise WireError(f"{where or 'value'}: {value} is not a finite number")
    elif isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            raise WireError(f"{where or 'value'}: nested deeper than {MAX_DEPTH} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str):
                _check_text(key, path)
            check(item, path, depth + 1)


def _check_text(text: str, where: str) -> None:
    if "\x00" in text:
        raise WireError(f"{where or 'value'}: text contains \\u0000, which cannot be stored")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise WireError(f"{where or 'value'}: text contains an unpaired surrogate") from None


def check_object(value: dict[str, Any], name: str, limit: int = MAX_PARAMS_BYTES) -> None:
    """Check a params-like object: storable values and at most `limit` bytes of JSON.

    Raises:
        WireError: naming `name.key` and what is wrong, or the size and the limit.
    """
    check(value, name)
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    if (size := len(text.encode())) > limit:
        raise WireError(
            f"{name or 'object'}: {size} bytes of JSON, more than the limit of {limit} bytes"
        )
