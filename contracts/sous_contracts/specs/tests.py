"""Spec models of data tests: one model per test kind, selected by `kind`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from sous_contracts.common import Severity
from sous_contracts.specs.common import Duration, Spec, SpecName

Op = Literal[">", ">=", "<", "<=", "==", "!="]


class _Check(Spec):
    connection: SpecName | None = None
    """Connection the query runs against (defaults to the step's)."""


class SqlCheck(_Check):
    """A query's scalar compared by an operator to a value."""

    kind: Literal["sql"]
    query: str
    """SQL returning one value."""
    op: Op = "=="
    """Comparison."""
    value: Any
    """Value to compare with."""


class MetricCheck(Spec):
    """A step output compared by an operator to a value."""

    kind: Literal["metric"]
    output: str
    """Key of the step's outputs."""
    op: Op = ">"
    """Comparison."""
    value: Any
    """Value to compare with."""


class RowCountCheck(_Check):
    """Rows of a table (optionally filtered) within bounds."""

    kind: Literal["row_count"]
    table: str
    """Table (schema-qualified)."""
    where: str | None = None
    """Optional filter."""
    min: int | None = None
    """Fewest rows allowed."""
    max: int | None = None
    """Most rows allowed."""


class NotNullCheck(_Check):
    """No NULLs in the columns."""

    kind: Literal["not_null"]
    table: str
    """Table."""
    columns: list[str] = Field(min_length=1)
    """Columns."""


class UniqueCheck(_Check):
    """No duplicate values over the columns."""

    kind: Literal["unique"]
    table: str
    """Table."""
    columns: list[str] = Field(min_length=1)
    """Columns that together must be unique."""


class AcceptedValuesCheck(_Check):
    """A column holds only the listed values."""

    kind: Literal["accepted_values"]
    table: str
    """Table."""
    column: str
    """Column."""
    values: list[Any] = Field(min_length=1)
    """Allowed values."""


class FreshnessCheck(_Check):
    """The newest timestamp is not older than `max_age`."""

    kind: Literal["freshness"]
    table: str
    """Table."""
    column: str
    """Timestamp column."""
    max_age: Duration
    """Oldest allowed age of the newest row."""


class SchemaCheck(_Check):
    """Columns are present with the given types."""

    kind: Literal["schema"]
    table: str
    """Table."""
    columns: dict[str, str]
    """Column → type as PostgreSQL names it (`integer`, `text`, `numeric` …)."""


class HistoryCheck(Spec):
    """A value against the last N runs of the same variation."""

    kind: Literal["history"]
    output: str
    """Step output to follow."""
    last: int = Field(default=10, ge=2)
    """How many earlier runs to compare with."""
    within_pct: float | None = Field(default=None, gt=0)
    """Allowed deviation from the mean, in percent."""
    max_z: float | None = Field(default=None, gt=0)
    """Allowed z-score."""
    min_history: int = Field(default=3, ge=1)
    """Runs needed before the test judges; fewer → passes with a note."""


class PythonCheck(Spec):
    """A callable `module:function` returning a bool or a value compared by `op`."""

    kind: Literal["python"]
    function: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]
    """`module:function`."""
    op: Op | None = None
    """Comparison when the callable returns a value."""
    value: Any = None
    """Value to compare with."""


Check = Annotated[
    SqlCheck
    | MetricCheck
    | RowCountCheck
    | NotNullCheck
    | UniqueCheck
    | AcceptedValuesCheck
    | FreshnessCheck
    | SchemaCheck
    | HistoryCheck
    | PythonCheck,
    Field(discriminator="kind"),
]


class TestSpec(Spec):
    """A data test attached to a step; the same definition runs in every kitchen."""

    __test__ = False

    name: SpecName
    """Unique within the step."""
    check: Check
    """What to check."""
    severity: Severity = Severity.ERROR
    """`error` stops the run, `warning` is reported, `log` recorded."""
    timeout: Duration = 60.0
    """Longest the test may take."""
