"""What a runner gets for one attempt, and the runner signature."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel, ValidationError

from sous_contracts.common import Outputs
from sous_contracts.steps import ExecuteStep
from sous_executor.adapters.reaper import Reaper
from sous_executor.domain.outcome import SpecError
from sous_executor.domain.redact import Redactor
from sous_executor.domain.tail import LogTail
from sous_executor.settings import ExecutorSettings

if TYPE_CHECKING:
    from sous_executor.adapters.warm import WarmPool


@dataclass
class StepContext:
    """One attempt as a runner sees it; values are resolved, never sent anywhere as they are."""

    command: ExecuteStep
    """The ExecuteStep being run."""
    connections: Mapping[str, str]
    """Connection name → resolved value."""
    secrets: Mapping[str, str]
    """Secret name → value."""
    redactor: Redactor
    """Masks every connection and secret value."""
    tail: LogTail
    """The step's log tail."""
    workdir: Path | None
    """A fresh folder for this attempt (process kinds only)."""
    settings: ExecutorSettings
    """The replica's settings."""
    reaper: Reaper | None = None
    """Kills registered process groups if the executor dies."""
    warm: WarmPool | None = None
    """Warm interpreters python steps fork from; none: every python step runs cold."""

    @property
    def folder(self) -> Path:
        """The attempt's working folder; only process kinds have one."""
        if self.workdir is None:
            raise RuntimeError(f"{self.command.kind} steps have no working folder")
        return self.workdir

    def ids(self) -> dict[str, str]:
        """Return the `SOUS_*` id variables of the step environment."""
        c = self.command
        return {
            "SOUS_ORDER_RUN_ID": str(c.order_run_id),
            "SOUS_STEP_RUN_ID": str(c.step_run_id),
            "SOUS_STEP": c.step,
            "SOUS_ATTEMPT": str(c.attempt),
            "SOUS_KITCHEN": c.kitchen,
            "SOUS_DOMAIN": c.domain,
            "SOUS_OUTPUTS": str(self.folder / ".sous-outputs"),
        }


Runner = Callable[[StepContext], Awaitable[Outputs]]
"""Runs one attempt: returns the outputs, raises StepFailure, and on cancellation cleans up."""


SpecModel = TypeVar("SpecModel", bound=BaseModel)


def parse_spec(model: type[SpecModel], context: StepContext) -> SpecModel:
    """Validate the step's `spec` with the recipe spec model of its kind.

    Raises:
        SpecError: the spec does not fit the model (each field and what was wrong).
    """
    try:
        return model.model_validate({**context.command.spec, "kind": context.command.kind})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(spec)'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise SpecError(f"invalid {context.command.kind} spec: {problems}") from exc
