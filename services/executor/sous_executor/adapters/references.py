"""Resolving a step's connection and secret references, as spec errors when they fail."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sous_common.references import UnresolvedReference, resolve
from sous_executor.domain.outcome import SpecError


class References:
    """Resolves `env:VAR` and `secret:NAME` with the executor's environment and secrets folder."""

    def __init__(self, secrets_dir: Path | None, environ: Mapping[str, str] | None = None) -> None:
        self._dir = secrets_dir
        self._environ = environ

    def resolve(self, reference: str) -> str:
        """Return the value a reference points to.

        Raises:
            SpecError: malformed or unresolvable (the message names the reference only).
        """
        try:
            return resolve(reference, secrets_dir=self._dir, environ=self._environ)
        except UnresolvedReference as exc:
            raise SpecError(str(exc)) from exc

    def secret(self, name: str) -> str:
        """Return the value of the secret `name` (see `resolve`)."""
        return self.resolve(f"secret:{name}")
