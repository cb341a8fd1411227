"""Test commands (scheduler → test-runner) and results (test-runner → scheduler, consoles)."""

from __future__ import annotations

import uuid
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from sous_contracts.common import Name, Outputs, Params, Severity, TestStatus, TestSummary
from sous_contracts.envelope import Contract, Envelope


def monitor_check(message: Envelope) -> None:
    """A message of a monitor's check names its dataset, domain and kitchen (or is refused)."""
    if getattr(message, "monitor", None) is not None:
        missing = [f for f in ("dataset", "domain", "kitchen") if not getattr(message, f)]
        if missing:
            raise ValueError(f"a monitor's check needs {', '.join(missing)}")


class TestDefinition(Contract):
    """One test as the test-runner receives it: a kind's settings and a severity."""

    __test__ = False

    name: Name
    """Test name, unique within the step."""
    kind: str
    """Test kind (`sql`, `metric`, `row_count`, `history` …)."""
    check: dict[str, Any] = Field(default_factory=dict)
    """The kind's settings, params resolved."""
    severity: Severity = Severity.ERROR
    """What a failure does."""
    timeout_s: float = Field(default=60.0, gt=0)
    """Seconds the test may take before it counts as `error`."""


class RunTests(Envelope):
    """Command: run the tests of a step that just succeeded."""

    type: Literal["RunTests"] = "RunTests"
    order_run_id: uuid.UUID
    """The run."""
    step_run_id: uuid.UUID
    """The step."""
    step: Name
    """Step name."""
    attempt: int = Field(default=1, ge=1)
    """Attempt whose outputs are tested."""
    suite_id: uuid.UUID
    """Id of this test suite execution; results and the summary carry it."""
    domain: Name
    """Owning domain."""
    recipe: Name
    """Recipe."""
    kitchen: Name
    """Kitchen."""
    variation: Name | None = None
    """Variation (history tests compare within it)."""
    tests: list[TestDefinition]
    """Tests to run."""
    outputs: Outputs = Field(default_factory=Outputs)
    """The step's outputs, for `metric` tests."""
    params: Params = Field(default_factory=dict)
    """The run's resolved parameters."""
    connections: dict[str, str] = Field(default_factory=dict)
    """Connection name → reference (`secret:NAME`), resolved in the secret store of this
    domain and kitchen only."""
    monitor: Name | None = None
    """Set when this is a monitor's check: the monitor's name (its `order_run_id` and
    `step_run_id` are then the check's id, `recipe` is `monitors`, `step` the monitor)."""
    dataset: str | None = None
    """The dataset a monitor's check watched (resolved)."""

    @model_validator(mode="after")
    def _monitor_names_its_dataset(self) -> Self:
        monitor_check(self)
        return self


class TestResult(Envelope):
    """Event: the outcome of one test; ops consoles follow this topic."""

    __test__ = False

    type: Literal["TestResult"] = "TestResult"
    order_run_id: uuid.UUID
    """The run."""
    step_run_id: uuid.UUID
    """The step."""
    suite_id: uuid.UUID
    """The suite execution."""
    step: Name
    """Step name."""
    test: Name
    """Test name."""
    kind: str
    """Test kind."""
    severity: Severity
    """Declared severity."""
    status: TestStatus
    """Outcome: `passed`, `failed` (error severity), `warning`, `error` (could not run), `log`."""
    domain: Name
    """Owning domain."""
    recipe: Name
    """Recipe."""
    kitchen: Name
    """Kitchen."""
    variation: Name | None = None
    """Variation."""
    value: Any = None
    """Measured value."""
    threshold: Any = None
    """What it was compared with."""
    message: str = ""
    """Explanation for people."""
    duration_s: float = Field(default=0.0, ge=0)
    """Time the test took."""
    monitor: Name | None = None
    """Set when this is a monitor's check: the monitor's name (its `order_run_id` and
    `step_run_id` are then the check's id, `recipe` is `monitors`, `step` the monitor)."""
    dataset: str | None = None
    """The dataset a monitor's check watched (resolved)."""

    @model_validator(mode="after")
    def _monitor_names_its_dataset(self) -> Self:
        monitor_check(self)
        return self


class TestSuiteFinished(Envelope):
    """Event: every test of a suite has a result."""

    __test__ = False

    type: Literal["TestSuiteFinished"] = "TestSuiteFinished"
    order_run_id: uuid.UUID
    """The run."""
    step_run_id: uuid.UUID
    """The step."""
    suite_id: uuid.UUID
    """The suite execution."""
    step: Name
    """Step name."""
    summary: TestSummary
    """Counts by outcome."""
    blocking: bool
    """True when an error-severity test failed or errored: the step fails."""
    failed_tests: list[Name] = Field(default_factory=list)
    """Names of the tests that blocked."""
    results: dict[Name, TestStatus] = Field(default_factory=dict)
    """Outcome of every test of the suite by name (lineage's data-quality assertions);
    empty from test-runners that predate it."""
    domain: Name | None = None
    """Owning domain (set by test-runners since monitors)."""
    kitchen: Name | None = None
    """Kitchen (set by test-runners since monitors)."""
    monitor: Name | None = None
    """Set when this is a monitor's check: the monitor's name (its `order_run_id` and
    `step_run_id` are then the check's id, `recipe` is `monitors`, `step` the monitor)."""
    dataset: str | None = None
    """The dataset a monitor's check watched (resolved)."""

    @model_validator(mode="after")
    def _monitor_names_its_dataset(self) -> Self:
        monitor_check(self)
        return self
