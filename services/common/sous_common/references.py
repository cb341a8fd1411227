"""Resolving references (`secret:NAME`) in the secret store of the domain and kitchen that own them.

Specs and messages carry references only; a service resolves them in its own process, so a
value (a DSN with its password, a token) never travels on Kafka. A reference is looked up for
one scope, the domain and kitchen a step or test runs for, and nowhere else: never in the
service's environment at large, never in another domain's store. Most specific first:

    <secrets_dir>/<domain>/<kitchen>/<NAME>       file (trailing newlines dropped)
    SOUS_SECRET_<DOMAIN>__<KITCHEN>__<NAME>       variable
    <secrets_dir>/<domain>/<NAME>
    SOUS_SECRET_<DOMAIN>__<NAME>

A variable's parts are upper-cased with `-` and `.` turned into `_`, and joined by `__`. A part
that would make a name ambiguous (one holding `__`, or starting or ending with `_`) has no
variable: such a secret comes from a file. `env:NAME` is an older spelling of `secret:NAME`
and is looked up in the same store. Error messages name the reference and where it was
looked for, never a value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SCHEMES = ("secret", "env")
"""`secret:NAME`, and `env:NAME`, the older spelling of the same thing."""

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")
_SCOPE = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_PART = re.compile(r"[A-Z0-9]+(?:_[A-Z0-9]+)*")
_NOT_VARIABLE = re.compile(r"[-.]")


class UnresolvedReference(LookupError):
    """A reference is malformed or points to nothing; the message is safe to publish."""


@dataclass(frozen=True)
class Scope:
    """Whose store a reference resolves in: the domain and kitchen a step or test runs for."""

    domain: str
    kitchen: str


def name_problem(name: str) -> str | None:
    """Return why `name` cannot name a secret (a path, a leading dot …), or None when it can."""
    if _NAME.fullmatch(name):
        return None
    return (
        f"secret name {name!r} must be letters, digits, '_', '.' and '-' (no '/'), "
        "starting with a letter, digit or '_'"
    )


def variable_part(name: str) -> str | None:
    """Return `name` as a part of a secret variable, or None when it would be ambiguous."""
    part = _NOT_VARIABLE.sub("_", name.upper())
    return part if _PART.fullmatch(part) else None


def secret_variable(domain: str, kitchen: str | None, name: str) -> str | None:
    """Return `SOUS_SECRET_<DOMAIN>[__<KITCHEN>]__<NAME>`, or None when a part is ambiguous."""
    parts = [variable_part(p) for p in (domain, kitchen, name) if p is not None]
    if any(p is None for p in parts):
        return None
    return "SOUS_SECRET_" + "__".join(p for p in parts if p is not None)


def places(scope: Scope, name: str, secrets_dir: Path | None) -> list[tuple[str, str]]:
    """Return where a secret is looked for, in order: ("file", path) or ("variable", name)."""
    found: list[tuple[str, str]] = []
    for kitchen in (scope.kitchen, None):
        if secrets_dir is not None:
            folder = secrets_dir / scope.domain
            found.append(("file", str(folder / kitchen / name if kitchen else folder / name)))
        if (variable := secret_variable(scope.domain, kitchen, name)) is not None:
            found.append(("variable", variable))
    return found


def resolve(
    reference: str,
    scope: Scope,
    *,
    secrets_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Return the value of `secret:NAME` (or `env:NAME`) in the store of `scope`.

    Args:
        reference: the reference, as a spec or message holds it.
        scope: the domain and kitchen the step or test runs for.
        secrets_dir: the folder of per-domain secret files, if the service has one.
        environ: where `SOUS_SECRET_*` variables are read (the process's when None).

    Raises:
        UnresolvedReference: malformed, or in none of the places of the scope.
    """
    environ = os.environ if environ is None else environ
    scheme, sep, name = reference.partition(":")
    if not sep or scheme not in SCHEMES:
        # What follows the scheme is not shown: a malformed reference may be a value.
        shown = f"{scheme}:…" if sep and scheme.isalnum() else "…"
        raise UnresolvedReference(f"reference {shown!r} is not secret:NAME")
    if (problem := name_problem(name)) is not None:
        raise UnresolvedReference(f"reference {reference!r}: {problem}")
    for label, value in (("domain", scope.domain), ("kitchen", scope.kitchen)):
        if not _SCOPE.fullmatch(value):
            raise UnresolvedReference(f"reference {reference!r}: {label} {value!r} is not a name")
    looked = places(scope, name, secrets_dir)
    for where, place in looked:
        if where == "file":
            path = Path(place)
            if path.is_file():
                return path.read_text().rstrip("\n")
        elif (found := environ.get(place)) is not None:
            return found
    shown = ", ".join(p if w == "file" else f"${p}" for w, p in looked)
    message = (
        f"reference {reference!r} is not in the secret store of domain {scope.domain!r}, "
        f"kitchen {scope.kitchen!r} (looked for {shown or 'nothing'})"
    )
    if secrets_dir is None:
        message += "; no secrets folder is configured"
    if scheme == "env":
        message += "; env: references read the domain's store, never the service's environment"
    raise UnresolvedReference(message)
