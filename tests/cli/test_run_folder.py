"""What `sous` believes of a run folder: only servers that answer, only processes that run."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sous import run_folder, stack
from sous.supervisor import SERVICES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty run folder, and a shell that configured nothing."""
    monkeypatch.setattr(os, "environ", dict(os.environ))  # use_local_stack writes to it
    monkeypatch.setenv("SOUS_RUN_DIR", str(tmp_path))
    for key in (*run_folder.SERVERS, "SOUS_TOKEN", "SOUS_REGISTRY_URL"):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / "local").mkdir()
    (tmp_path / "stack").mkdir()
    return tmp_path


@pytest.fixture
def listening() -> Iterator[list[int]]:
    """Two ports something listens on, like a running broker and database."""
    socks = [socket.socket() for _ in range(2)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
        s.listen()
    yield [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()


@pytest.fixture
def refusing() -> Iterator[list[int]]:
    """Two ports held by no listener: a connection there is refused, like a stopped server."""
    socks = [socket.socket() for _ in range(2)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    yield [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()


def write_env(folder: Path, kafka: int, postgres: int) -> None:
    (folder / "local" / "env").write_text(
        f"SOUS_KAFKA_BOOTSTRAP=127.0.0.1:{kafka}\n"
        f"SOUS_DATABASE_URL=postgresql://sous@127.0.0.1:{postgres}/sous\n"
    )


def test_the_env_lines_of_stopped_servers_are_not_loaded(folder: Path, refusing: list[int]) -> None:
    write_env(folder, *refusing)
    run_folder.use_local_stack()
    assert "SOUS_KAFKA_BOOTSTRAP" not in os.environ
    assert "SOUS_DATABASE_URL" not in os.environ


def test_the_env_lines_of_running_servers_are_loaded(folder: Path, listening: list[int]) -> None:
    write_env(folder, *listening)
    run_folder.use_local_stack()
    assert os.environ["SOUS_KAFKA_BOOTSTRAP"] == f"127.0.0.1:{listening[0]}"
    assert os.environ["SOUS_DATABASE_URL"].endswith(f":{listening[1]}/sous")
    # Loaded from deploy/local, they are not servers the user configured.
    assert not run_folder.servers_of_the_user(os.environ)
    assert run_folder.servers_of_the_user({"SOUS_KAFKA_BOOTSTRAP": "broker-1:9092"})


def test_infra_down_removes_the_env_lines(folder: Path) -> None:
    write_env(folder, 1, 2)
    subprocess.run(
        ["bash", str(ROOT / "deploy" / "local" / "infra.sh"), "down"],
        check=True,
        capture_output=True,
        env={**os.environ, "SOUS_RUN_DIR": str(folder)},
        timeout=60,
    )
    assert not (folder / "local" / "env").exists()


def stand_in(name: str) -> subprocess.Popen[bytes]:
    """A process whose command line is service `name`'s, as the supervisor starts it."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)", *SERVICES[name]],
        start_new_session=True,
    )


@pytest.fixture
def fake_infra(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """deploy/local's script, replaced by one that notes it was asked to stop the servers."""
    script = folder / "infra.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {folder / "infra-calls"}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(stack, "INFRA", script)
    return folder / "infra-calls"


def test_down_stops_the_services_a_dead_supervisor_left(
    folder: Path, fake_infra: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    children = {name: stand_in(name) for name in SERVICES}
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        for name, child in children.items():
            (folder / "stack" / f"{name}.pid").write_text(str(child.pid))
        # A pid the system has since given to another program is never signalled.
        (folder / "stack" / "executor.pid").write_text(str(unrelated.pid))
        children.pop("executor").kill()
        (folder / "stack" / "supervisor.pid").write_text("999999999")

        stack.down(keep_servers=True)

        assert "services stopped" in capsys.readouterr().out
        for name, child in children.items():
            assert child.wait(timeout=30) == -15, name
        assert unrelated.poll() is None
        assert not list((folder / "stack").glob("*.pid"))
        assert not fake_infra.exists()
    finally:
        for p in (*children.values(), unrelated):
            p.kill()
            p.wait()


def test_down_stops_the_local_servers_whose_env_lines_the_cli_loaded(
    folder: Path, fake_infra: Path, listening: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    write_env(folder, *listening)
    run_folder.use_local_stack()
    stack.down(keep_servers=False)
    assert "no services running" in capsys.readouterr().out
    assert fake_infra.read_text() == "down\n"


def test_down_leaves_the_servers_the_user_configured(
    folder: Path, fake_infra: Path, listening: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_env(folder, *listening)
    monkeypatch.setenv("SOUS_KAFKA_BOOTSTRAP", "broker-1:9092")
    monkeypatch.setenv("SOUS_DATABASE_URL", "postgresql://sous@db:5432/sous")
    run_folder.use_local_stack()
    stack.down(keep_servers=False)
    assert not fake_infra.exists()
