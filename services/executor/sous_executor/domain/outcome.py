"""How an attempt ends, and the failures runners raise (one small hierarchy).

```
StepFailure            a runner's failure, carrying the StepError a person reads
└── SpecError          the step's spec or a reference cannot be used (kind `spec`)
```
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sous_contracts.common import Outputs, StepStatus
from sous_contracts.steps import StepError


class StepFailure(Exception):
    """A runner failed the attempt; `error` says why in words a person can act on."""

    def __init__(self, error: StepError, outputs: Outputs | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.outputs = outputs or Outputs()


class SpecError(StepFailure):
    """The spec or a reference is unusable; retrying will not help."""

    def __init__(self, message: str) -> None:
        super().__init__(StepError(kind="spec", message=message))


@dataclass(frozen=True)
class Outcome:
    """The end of one attempt, before redaction."""

    status: StepStatus
    """How it ended."""
    outputs: Outputs = field(default_factory=Outputs)
    """What the step published."""
    error: StepError | None = None
    """Why, when it did not succeed."""


def exit_error(returncode: int) -> StepError:
    """Describe a process end: a negative code is the signal that killed it."""
    if returncode < 0:
        return StepError(
            kind="signal", message=f"killed by signal {-returncode}", signal=-returncode
        )
    return StepError(
        kind="exit_code", message=f"exited with code {returncode}", exit_code=returncode
    )
