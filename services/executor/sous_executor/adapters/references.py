"""Resolving a step's connection and secret references, as spec errors when they fail."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sous_common.references import Scope, UnresolvedReference, resolve
from sous_executor.domain.outcome import SpecError


class References:
    """Resolves `secret:NAME` in the store of the step's domain and kitchen, nowhere else.

    The store is the executor's secrets folder (`<dir>/<domain>/[<kitchen>/]NAME`) and its
    `SOUS_SECRET_<DOMAIN>__[<KITCHEN>__]<NAME>` variables; see `sous_common.references`.
    """

    def __init__(self, secrets_dir: Path | None, environ: Mapping[str, str] | None = None) -> None:
        self._dir = secrets_dir
        self._environ = environ

    def resolve(self, reference: str, scope: Scope) -> str:
        """Return the value a reference points to for the step's domain and kitchen.

        Raises:
            SpecError: malformed or unresolvable (the message names the reference only).
        """
        try:
            return resolve(reference, scope, secrets_dir=self._dir, environ=self._environ)
        except UnresolvedReference as exc:
            raise SpecError(str(exc)) from exc

    def secret(self, name: str, scope: Scope) -> str:
        """Return the value of the secret `name` of the scope (see `resolve`)."""
        return self.resolve(f"secret:{name}", scope)
