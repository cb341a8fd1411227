"""A private Kafka and PostgreSQL in a test's own folder, on its own free ports, driven through
`python -m sous.infra --dir …` exactly as a user drives `sous infra`. Never the shared servers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Servers


@dataclass(frozen=True)
class PrivateInfra:
    folder: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "sous.infra", "--dir", str(self.folder), *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and done.returncode:
            raise AssertionError(
                f"sous infra {' '.join(args)} exited {done.returncode}: {done.stderr[-3000:]}"
            )
        return done

    def up(self) -> Servers:
        out = self.run("up").stdout
        env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        return Servers(env["SOUS_KAFKA_BOOTSTRAP"], env["SOUS_DATABASE_URL"])

    async def stop(self, server: str) -> None:
        await asyncio.to_thread(self.run, "stop", server)

    async def start(self, server: str) -> None:
        await asyncio.to_thread(self.run, "start", server)

    def down(self) -> None:
        self.run("down", "--purge", check=False)


@pytest.fixture(scope="session")
def private_infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateInfra]:
    """One private instance for the tests that stop and start its servers (started on first
    use, removed at the end of the session); every user leaves both servers running."""
    instance = PrivateInfra(tmp_path_factory.mktemp("infra") / "local")
    try:
        yield instance
    finally:
        instance.down()
