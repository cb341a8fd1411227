"""Where a local instance keeps its state: one run folder, the files in it, its ports and env."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
POM = ROOT / "deploy" / "local" / "pom.xml"
KAFKA_ADMIN = "sous-admin"
"""The SASL super user of a secured broker; the same name as sous/kafka_access.py's ADMIN."""
DB_USER = "sous"
DB_NAME = "sous"


def default_dir() -> Path:
    """The run folder of the checkout's instance: `${SOUS_RUN_DIR:-<repo>/.run}/local`."""
    return Path(os.environ.get("SOUS_RUN_DIR") or ROOT / ".run").absolute() / "local"


def ready_timeout() -> float:
    """Seconds each server gets to become ready (`SOUS_INFRA_TIMEOUT`, default 90)."""
    return float(os.environ.get("SOUS_INFRA_TIMEOUT") or 90)


@dataclass(frozen=True)
class Layout:
    """The files of one instance; servers run elsewhere, so every path is absolute."""

    run_dir: Path

    @classmethod
    def at(cls, folder: Path | None) -> Layout:
        """The instance in `folder`, else the checkout's one."""
        return cls(folder.absolute() if folder else default_dir())

    @property
    def env_file(self) -> Path:  # noqa: D102
        return self.run_dir / "env"

    @property
    def ports_file(self) -> Path:  # noqa: D102
        return self.run_dir / "ports"

    @property
    def lock_file(self) -> Path:  # noqa: D102
        return self.run_dir / ".lock"

    @property
    def kafka_dir(self) -> Path:  # noqa: D102
        return self.run_dir / "kafka"

    @property
    def kafka_data(self) -> Path:  # noqa: D102
        return self.kafka_dir / "data"

    @property
    def kafka_logs(self) -> Path:  # noqa: D102
        return self.kafka_dir / "logs"

    @property
    def kafka_log(self) -> Path:
        """The broker log written by log4j2."""
        return self.kafka_logs / "server.log"

    @property
    def kafka_props(self) -> Path:  # noqa: D102
        return self.kafka_dir / "server.properties"

    @property
    def users_dir(self) -> Path:
        """`<principal>.env` per SASL user of a secured broker, mode 0600."""
        return self.kafka_dir / "users"

    @property
    def security_file(self) -> Path:
        """Present once the storage is formatted with SASL/SCRAM."""
        return self.kafka_dir / "security"

    @property
    def postgres_link(self) -> Path:
        """The Postgres folder, or a link to one under /tmp (see postgres.prepare_dir)."""
        return self.run_dir / "postgres"


@dataclass(frozen=True)
class Ports:
    """The ports of an instance, remembered so a restart after `down` reuses them."""

    kafka: int | None = None
    controller: int | None = None
    postgres: int | None = None

    _NAMES = (
        ("kafka", "KAFKA_PORT"),
        ("controller", "KAFKA_CONTROLLER_PORT"),
        ("postgres", "PG_PORT"),
    )

    def render(self) -> str:
        """The ports file's text (the names infra.sh always used, so old folders still load)."""
        return "".join(f"{key}={getattr(self, attr) or ''}\n" for attr, key in self._NAMES)

    @classmethod
    def parse(cls, text: str) -> Ports:
        """Read a ports file's text; missing or empty values stay unknown."""
        pairs = dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)
        values = {attr: int(pairs[key]) for attr, key in cls._NAMES if pairs.get(key, "").isdigit()}
        return cls(**values)


def load_ports(layout: Layout) -> Ports:
    """The remembered ports, or none."""
    path = layout.ports_file
    return Ports.parse(path.read_text()) if path.is_file() else Ports()


def save_ports(layout: Layout, ports: Ports) -> None:
    """Remember the ports (written whole, then moved into place)."""
    tmp = layout.ports_file.with_suffix(".tmp")
    tmp.write_text(ports.render())
    tmp.replace(layout.ports_file)


def env_lines(ports: Ports, security: str = "") -> str:
    """The lines `up` prints and `env` repeats: the servers, then a secured broker's SASL lines."""
    return (
        f"SOUS_KAFKA_BOOTSTRAP=127.0.0.1:{ports.kafka}\n"
        f"SOUS_DATABASE_URL=postgresql://{DB_USER}@127.0.0.1:{ports.postgres}/{DB_NAME}\n"
        f"{security}"
    )


def write_env(layout: Layout, text: str, *, private: bool) -> None:
    """Write the env file; a secured broker's carries the super user's password (mode 0600)."""
    tmp = layout.env_file.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    tmp.touch(mode=0o600 if private else 0o644)
    tmp.write_text(text)
    tmp.replace(layout.env_file)
