"""The environment each service of the local stack gets: what it needs, nothing more.

The CLI's own environment may hold anything (the admin token, a user's `SOUS_TOKEN`, cloud
credentials); a service sees only the basics of a process, the servers, and the settings it
reads itself. Only the domain registry gets `SOUS_DOMAIN_REGISTRY_ADMIN_TOKEN`; only the
executor and the test-runner get the domains' secret stores (`SOUS_SECRET_*`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sous_common.references import secret_variable

BASICS = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "VIRTUAL_ENV")
"""Variables every process needs to behave (locale `LC_*` too), none of them a secret."""

PYTHONPATH = "PYTHONPATH"
"""Where extra step and check modules live, when a user set it."""

SERVERS = ("SOUS_KAFKA_", "SOUS_DATABASE_", "SOUS_OPS_", "OTEL_")
"""Prefixes of the broker, database, ops endpoint and OpenTelemetry settings every service
reads."""

PREFIXES: dict[str, tuple[str, ...]] = {
    "domain-registry": ("SOUS_DOMAIN_REGISTRY_",),
    "scheduler": ("SOUS_SCHEDULER_",),
    "executor": ("SOUS_EXECUTOR_", "SOUS_SECRET_"),
    "test-runner": ("SOUS_TEST_RUNNER_", "SOUS_SECRET_"),
    "console": ("SOUS_CONSOLE_",),
}
"""Each service's own settings (its `env_prefix`), and the secret stores of those that run
the domains' steps and tests."""


def service_environment(name: str, environ: Mapping[str, str]) -> dict[str, str]:
    """Return the part of `environ` service `name` may see.

    Raises:
        KeyError: unknown service.
    """
    prefixes = (*SERVERS, *PREFIXES[name])
    return {
        key: value
        for key, value in environ.items()
        if key in BASICS or key == PYTHONPATH or key.startswith("LC_") or key.startswith(prefixes)
    }


def example_secrets(mesh: Path, warehouse_dsn: str) -> dict[str, str]:
    """Return the `warehouse` secret of every example domain, as its store's variable.

    The example specs name their warehouse `secret:warehouse`; each domain gets its own
    `SOUS_SECRET_<DOMAIN>__WAREHOUSE`, all pointing at the one local database.
    """
    found = {}
    for domain_file in sorted(mesh.glob("*/domain.yaml")):
        variable = secret_variable(domain_file.parent.name, None, "warehouse")
        if variable is not None:
            found[variable] = warehouse_dsn
    return found
