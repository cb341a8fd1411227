"""Value types shared by several contract modules."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo

from sous_contracts import wire
from sous_contracts.envelope import Contract

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
"""A domain, recipe, kitchen, variation, step or test name: lower case, digits, `_` and `-`."""


def _storable(value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
    wire.check_object(value, info.field_name or "")
    return value


Params = Annotated[dict[str, Any], AfterValidator(_storable)]
"""Parameter values by name: JSON values that any reader can store (finite numbers, no
`\\u0000`, no unpaired surrogates), at most `wire.MAX_PARAMS_BYTES` bytes of JSON."""

LOG_TAIL_MAX = 16_384
"""Characters of a step's log kept in `StepFinished` (the end of the log)."""


class RunStatus(StrEnum):
    """Where an order run ends up."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StepStatus(StrEnum):
    """How one attempt of a step ended, as the executor reports it."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


class Severity(StrEnum):
    """What a failing test does: `error` stops the run, `warning` is reported, `log` recorded."""

    ERROR = "error"
    WARNING = "warning"
    LOG = "log"


class TestStatus(StrEnum):
    """Outcome of one test."""

    __test__ = False

    PASSED = "passed"
    FAILED = "failed"
    WARNING = "warning"
    ERROR = "error"
    LOG = "log"


class DatasetRef(Contract):
    """A dataset a step wrote or read, e.g. a table or a file."""

    uri: str
    """Where the dataset lives, e.g. `postgresql://warehouse/finance.revenue` or `s3://b/k`."""
    kind: str = "table"
    """What kind of dataset: `table`, `file`, `view` …"""
    rows: int | None = None
    """Rows written, when known."""


class Outputs(Contract):
    """What a step publishes for tests and downstream params."""

    values: Params = Field(default_factory=dict)
    """Key/values (metrics, counts, names); bounded like params."""
    datasets: list[DatasetRef] = Field(default_factory=list)
    """Datasets the step produced."""


class TestSummary(Contract):
    """Counts of test outcomes for a step or a run."""

    __test__ = False

    passed: int = 0
    """Tests that passed."""
    failed: int = 0
    """Error-severity tests that failed (these stop the run)."""
    warnings: int = 0
    """Warning-severity tests that failed."""
    errors: int = 0
    """Tests that could not run."""
    logged: int = 0
    """Log-severity results recorded."""

    @property
    def total(self) -> int:
        """All results counted."""
        return self.passed + self.failed + self.warnings + self.errors + self.logged
