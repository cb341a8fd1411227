"""Spec models of recipe steps: what a step runs, its needs, retries and tests."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from sous_contracts.specs.common import Duration, IngredientRef, RecipeRef, Spec, SpecName
from sous_contracts.specs.placeholders import PLACEHOLDER, references
from sous_contracts.specs.tests import TestSpec


class ShellRun(Spec):
    """Run an argv list; params arrive as environment variables, never spliced into a string."""

    kind: Literal["shell"]
    argv: list[str] = Field(min_length=1)
    """Program and arguments."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment; values may use `${params.x}`."""
    cwd: str | None = None
    """Working directory relative to the domain folder; default a fresh folder per attempt."""


class PythonRun(Spec):
    """Call `module:function` (sync or async) in a subprocess."""

    kind: Literal["python"]
    function: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]
    """`module:function`."""
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments; values may use `${params.x}`."""
    cold: bool = False
    """Start a fresh interpreter for this step instead of forking a warm one (for code that
    needs a clean process: it reads the environment at import, starts threads on import …)."""


class SqlRun(Spec):
    """Run SQL against a named connection."""

    kind: Literal["sql"]
    connection: SpecName
    """Connection of the domain."""
    sql: str | None = None
    """Statements inline."""
    file: str | None = None
    """Statements in a file relative to the domain folder."""
    statement_timeout: Duration | None = None
    """Per-statement limit."""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.sql is None) == (self.file is None):
            raise ValueError("give exactly one of 'sql' or 'file'")
        return self


class HttpRun(Spec):
    """Call an HTTP endpoint."""

    kind: Literal["http"]
    url: str
    """URL; may use `${params.x}`."""
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    """HTTP method."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Headers; values may reference secrets as `${secret:NAME}`."""
    body: Any = None
    """JSON body."""
    expect_status: list[int] = Field(default_factory=lambda: [200, 201, 202, 204])
    """Statuses that count as success."""


class NoopRun(Spec):
    """Do nothing (benchmarks, tests, placeholders)."""

    kind: Literal["noop"]
    outputs: dict[str, Any] = Field(default_factory=dict)
    """Outputs to publish."""


StepRun = Annotated[ShellRun | PythonRun | SqlRun | HttpRun | NoopRun, Field(discriminator="kind")]


_DATASET = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/@+=-]*$")


def dataset_problem(name: str) -> str | None:
    """Return why `name` is not a dataset name (placeholders aside), or None."""
    if bad := [p for p in references(name) if not p.startswith("params.")]:
        return f"dataset {name!r}: only ${{params.x}} placeholders are allowed, not ${{{bad[0]}}}"
    bare = PLACEHOLDER.sub("x", name)
    if "${" in bare or not _DATASET.fullmatch(bare):
        return (
            f"dataset {name!r}: use letters, digits and _ . : / @ + = - "
            "(e.g. `finance.revenue` or `s3://bucket/key`)"
        )
    return None


def _dataset(name: str) -> str:
    if (why := dataset_problem(name)) is not None:
        raise PydanticCustomError("dataset_name", why)
    return name


DatasetName = Annotated[
    str, StringConstraints(min_length=1, max_length=300), AfterValidator(_dataset)
]
"""A dataset: `schema.table`, a URI (`s3://bucket/key`); may use `${params.x}`."""


MonitorTestRef = Annotated[
    str,
    StringConstraints(
        pattern=r"^([a-z][a-z0-9_-]{0,62}/)?[a-z][a-z0-9_-]{0,62}\.[a-z][a-z0-9_-]{0,62}$"
    ),
]
"""A monitor's test: `monitor.test`, or `domain/monitor.test` of another domain."""


class Retries(Spec):
    """How often a failed step is tried again, and how long to wait between tries."""

    max: int = Field(default=0, ge=0, le=100)
    """Further attempts after the first."""
    backoff: Duration = 10.0
    """Wait before the first retry."""
    factor: float = Field(default=2.0, ge=1.0)
    """Growth of the wait per retry."""
    max_backoff: Duration = 600.0
    """Longest wait."""


class StepSpec(Spec):
    """One node of a recipe's DAG: exactly one of `run`, `recipe` or `use`."""

    needs: list[SpecName] = Field(default_factory=list)
    """Steps that must succeed first."""
    run: StepRun | None = None
    """What the executor runs."""
    recipe: RecipeRef | None = None
    """A nested recipe, run as a child order run."""
    use: IngredientRef | None = None
    """An ingredient `domain/name@version` expanded in place."""
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    """Params for the ingredient or nested recipe."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Step-level param values."""
    timeout: Duration = 3600.0
    """Longest one attempt may take."""
    retries: Retries = Field(default_factory=Retries)
    """Retry policy."""
    tests: list[TestSpec] = Field(default_factory=list)
    """Tests run after the step succeeds."""
    monitor_tests: list[MonitorTestRef] = Field(default_factory=list, max_length=100)
    """Tests of the domain's monitors run after the step too, by `monitor.test` (or
    `domain/monitor.test`): one definition for monitoring and the step's own tests."""
    when: Annotated[str, Field(min_length=1, max_length=2000)] | None = None
    """A CEL condition, evaluated when the step is ready: false skips the step. It reads
    `params`, `steps.<need>.outputs|tests|status` of the steps it needs, the triggering
    `event` and `run`, e.g. `steps.ingest.outputs.rows > 0 && params.full_refresh == false`."""
    inputs: list[DatasetName] = Field(default_factory=list, max_length=100)
    """Datasets the step reads, e.g. `sales.orders` or `${params.target_schema}.revenue`."""
    outputs: list[DatasetName] = Field(default_factory=list, max_length=100)
    """Datasets the step writes; a step may report more in its outputs (`datasets`)."""
    if_needs_skipped: Literal["skip", "run"] = "skip"
    """What the step does when a step it needs was skipped: `skip` too (the default), or
    `run` anyway (the skipped step's outputs are then empty)."""

    @model_validator(mode="after")
    def _one_action(self) -> Self:
        given = [k for k in ("run", "recipe", "use") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a step needs exactly one of 'run', 'recipe' or 'use' (got {given or 'none'})"
            )
        names = [t.name for t in self.tests]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"test names repeat within the step: {dupes}")
        return self
