"""The local supervisor: services stop with it however its terminal goes away."""

from __future__ import annotations

import errno
import io
import sys
from pathlib import Path

import pytest
from rich.console import Console

from sous import stack
from sous.supervisor import Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(300)"]


class ClosedPipe(io.StringIO):
    """A terminal whose reader is gone, as `sous up | tee` after Ctrl-C."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


class ClosedTerminal(io.StringIO):
    """A terminal window that was closed."""

    def write(self, text: str) -> int:
        raise OSError(errno.EIO, "Input/output error")


def test_a_closed_pipe_silences_the_output_instead_of_ending_the_supervisor() -> None:
    out = stack.Terminal(file=ClosedPipe())
    out.print("scheduler exited with 1; restarting")
    assert out.quiet
    out.print("stopping services …")


def test_the_services_stop_even_when_printing_fails(tmp_path: Path) -> None:
    supervisor = Supervisor(
        tmp_path,
        {"scheduler": {}, "executor": {}},
        dict.fromkeys(("scheduler", "executor"), SLEEPER),
    )
    out = Console(file=ClosedTerminal())
    pid_file = tmp_path / "supervisor.pid"
    with pytest.raises(OSError, match="Input/output"), stack.supervised(supervisor, pid_file, out):
        children = [c.process for c in supervisor.children]
        out.print("services running")
    for child in children:
        assert child is not None
        assert child.poll() is not None
    assert not pid_file.exists()


def test_a_restart_is_noted_in_the_run_folder(tmp_path: Path) -> None:
    crash = [sys.executable, "-c", "raise SystemExit(3)"]
    supervisor = Supervisor(tmp_path, {"executor": {}}, {"executor": crash})
    supervisor.start_all()
    try:
        (child,) = supervisor.children
        assert child.process is not None
        child.process.wait(timeout=30)
        notes = supervisor.check()
    finally:
        supervisor.stop_all()
    assert notes == [f"executor exited with 3; restarting (see {tmp_path / 'executor.log'})"]
    assert notes[0] in (tmp_path / "supervisor.log").read_text()
