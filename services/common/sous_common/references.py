"""Resolving references (`env:VAR`, `secret:NAME`) to the values they point to.

Specs and messages carry references only; a service resolves them in its own process, so a
value (a DSN with its password, a token) never travels on Kafka. Error messages name the
reference, never a value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

_NOT_ENV = re.compile(r"[^A-Z0-9_]")


class UnresolvedReference(LookupError):
    """A reference is malformed or points to nothing; the message is safe to publish."""


def secret_env_name(name: str) -> str:
    """Return the variable a secret may come from: `SOUS_SECRET_<NAME>`, `-`/`.` as `_`."""
    return "SOUS_SECRET_" + _NOT_ENV.sub("_", name.upper())


def resolve(
    reference: str, *, secrets_dir: Path | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """Return the value of `env:VAR` (the process environment) or `secret:NAME`.

    A secret is the file `<secrets_dir>/NAME` (trailing newline dropped), else the variable
    `SOUS_SECRET_<NAME>`.

    Raises:
        UnresolvedReference: malformed, or nothing found where it points.
    """
    environ = os.environ if environ is None else environ
    scheme, sep, name = reference.partition(":")
    if not sep or not name or scheme not in ("env", "secret"):
        raise UnresolvedReference(f"reference {reference!r} is not env:VAR or secret:NAME")
    if scheme == "env":
        if (value := environ.get(name)) is None:
            raise UnresolvedReference(f"reference {reference!r}: ${name} is not set")
        return value
    if secrets_dir is not None and "/" not in name and name not in (".", ".."):
        path = secrets_dir / name
        if path.is_file():
            return path.read_text().rstrip("\n")
    if (value := environ.get(secret_env_name(name))) is None:
        where = f"{secrets_dir}/{name} or " if secrets_dir else ""
        raise UnresolvedReference(
            f"secret {name!r} is not available (looked for {where}${secret_env_name(name)})"
        )
    return value
