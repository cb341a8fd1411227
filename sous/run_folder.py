"""What the local stack left in its run folder, and how much of it still holds.

`deploy/local` writes the servers' addresses to `.run/local/env`; `sous up` writes the admin
token, the keys, the registry's address and every pid to `.run/stack/`. Files outlive the
processes they describe (a `kill -9`, a reboot, `make test` stopping its servers), so nothing
here is believed before the process or port it names is checked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from sous.keys_cmd import KEY_FILE, PRINCIPAL

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ("SOUS_KAFKA_BOOTSTRAP", "SOUS_DATABASE_URL")
"""The two variables that name the servers; deploy/local's env file sets both."""
REGISTRY_URL = "SOUS_REGISTRY_URL"
REGISTRY_PORT = "SOUS_DOMAIN_REGISTRY_PORT"
DEFAULT_REGISTRY_PORT = 8470


def base() -> Path:
    """The run folder: `SOUS_RUN_DIR`, else `.run` in the checkout."""
    return Path(os.environ.get("SOUS_RUN_DIR", ROOT / ".run"))


def stack_dir() -> Path:
    """Where `sous up` keeps logs, pids, keys, the token and the registry's address."""
    return base() / "stack"


def local_env_file() -> Path:
    """The env lines of the servers deploy/local started."""
    return base() / "local" / "env"


def read_env(path: Path) -> dict[str, str]:
    """Return the `KEY=value` lines of `path` (nothing when it is missing)."""
    if not path.is_file():
        return {}
    pairs = (line.partition("=") for line in path.read_text().splitlines())
    return {key: value for key, sep, value in pairs if sep and key}


def answers(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when something accepts a TCP connection at host:port."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _host_port(address: str) -> tuple[str, int] | None:
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        port = parts.port
    except ValueError:
        return None
    return (parts.hostname, port) if parts.hostname and port else None


def live_local_servers() -> dict[str, str]:
    """Return deploy/local's env lines when both servers they name answer, else nothing.

    `infra.sh down` removes the file, but one left by a killed script or a reboot must not
    send the CLI to the port of a server that is gone.
    """
    env = read_env(local_env_file())
    if not all(env.get(key) for key in SERVERS):
        return {}
    kafka = _host_port(env["SOUS_KAFKA_BOOTSTRAP"].split(",")[0])
    database = _host_port(env["SOUS_DATABASE_URL"])
    if kafka is None or database is None or not (answers(*kafka) and answers(*database)):
        return {}
    return env


def servers_of_the_user(environ: Mapping[str, str]) -> bool:
    """True when `environ` names servers other than the ones deploy/local started.

    Those are the user's: `sous down` leaves them alone. The CLI loads deploy/local's env
    lines into its own environment, so equal values mean deploy/local's servers.
    """
    bootstrap = environ.get("SOUS_KAFKA_BOOTSTRAP")
    if not bootstrap:
        return False
    return bootstrap != read_env(local_env_file()).get("SOUS_KAFKA_BOOTSTRAP")


def registry_file() -> Path:
    """Where `sous up` records the address its registry listens on."""
    return stack_dir() / "registry.url"


def recorded_registry() -> str | None:
    """The registry address `sous up` recorded, if any."""
    path = registry_file()
    return path.read_text().strip() if path.is_file() else None


def free_port(preferred: int, host: str = "127.0.0.1") -> int:
    """Return `preferred` when nothing listens there, else a port the system finds free."""
    from sous.infra.procs import free_ports

    if not answers(host, preferred, timeout_s=0.2):
        return preferred
    return free_ports(1, host=host)[0]


def use_local_stack() -> None:
    """Point this process at the local stack for what the user did not configure.

    A newcomer's second terminal then needs no exports: the servers come from deploy/local's
    env lines (while those servers answer), and the token, the admin's signing key and the
    registry's address from `sous up`'s run folder.
    """
    if not os.environ.get("SOUS_KAFKA_BOOTSTRAP"):
        for key, value in live_local_servers().items():
            os.environ.setdefault(key, value)
    folder = stack_dir()
    token = folder / "token"
    if not os.environ.get("SOUS_TOKEN") and token.is_file():
        os.environ["SOUS_TOKEN"] = token.read_text().strip()
    admin_key = folder / "keys" / "admin.pem"
    if not os.environ.get(KEY_FILE) and admin_key.is_file():
        os.environ[KEY_FILE] = str(admin_key)
        os.environ[PRINCIPAL] = "admin"
    registry = recorded_registry()
    if not os.environ.get(REGISTRY_URL) and registry:
        os.environ[REGISTRY_URL] = registry
