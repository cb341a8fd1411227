"""Spec errors: each names the file, the path inside it and the reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class SpecError:
    """One reason a bundle is refused."""

    file: str
    """File relative to the mesh root, e.g. `sales/recipes/daily.yaml`."""
    path: str
    """Path inside the document, e.g. `steps.load.needs[0]` (empty for the whole file)."""
    reason: str
    """What is wrong and what was expected."""

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.path}: {self.reason}"
            if self.path
            else f"{self.file}: {self.reason}"
        )


def dotted(loc: Sequence[Any]) -> str:
    """Render a location tuple as `steps.load.needs[0]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class RefusedError(Exception):
    """A bundle was refused; carries every error found."""

    def __init__(self, errors: list[SpecError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = sorted(errors)


class ConflictError(Exception):
    """A request that conflicts with the current state, e.g. a sandbox not ready to merge."""
