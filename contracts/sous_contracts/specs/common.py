"""Building blocks of the spec models: durations, names, references and the base model."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Turn `90`, `10s`, `10m`, `6h`, `1d` or `250ms` into seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return float(m.group(1)) * _UNIT_S[m.group(2)]
    raise ValueError(f"expected a duration such as 30s, 10m, 6h or 1d, got {value!r}")


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
"""Seconds; YAML may write `30s`, `10m`, `6h`, `1d`."""

SpecName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
"""A name in specs: lower case, digits, `_` and `-`, starting with a letter."""

RecipeRef = Annotated[str, StringConstraints(pattern=r"^([a-z][a-z0-9_-]*/)?[a-z][a-z0-9_-]*$")]
"""`recipe` in the same domain, or `domain/recipe`."""

IngredientRef = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]*/[a-z][a-z0-9_-]*@[0-9]+$")
]
"""`domain/ingredient@version`, the version pinned."""

ConnectionRef = Annotated[
    str, StringConstraints(pattern=r"^(env|secret):[A-Za-z_][A-Za-z0-9_./-]*$")
]
"""Where a connection's value comes from: `secret:NAME` in the secret store of the domain and
kitchen of the run (`env:NAME` is an older spelling of the same); never the value."""


class Spec(BaseModel):
    """Base of every spec model: unknown keys are errors, so typos are caught at apply time."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


ParamType = Literal["string", "integer", "number", "boolean", "date", "object", "array"]


class ParamSpec(Spec):
    """A declared parameter of a recipe or ingredient."""

    type: ParamType = "string"
    """Type the value must have."""
    required: bool = False
    """A run without a value is refused."""
    default: Any = None
    """Value when none is given."""
    description: str = ""
    """What it means."""


class ConnectionSpec(Spec):
    """A named connection of a domain, by reference only."""

    kind: Literal["postgres", "http", "generic"] = "postgres"
    """What it connects to."""
    ref: ConnectionRef
    """`secret:NAME` holding the DSN or URL, in the store of the run's domain and kitchen."""
    description: str = ""
    """What it is."""
