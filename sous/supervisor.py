"""A small process supervisor: start services, restart the ones that crash, stop all cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

SERVICES: dict[str, list[str]] = {
    "domain-registry": ["-m", "sous_domain_registry"],
    "scheduler": ["-m", "faststream", "run", "--factory", "sous_scheduler.app:create_app"],
    "executor": ["-m", "faststream", "run", "--factory", "sous_executor.app:create_app"],
    "test-runner": ["-m", "faststream", "run", "--factory", "sous_test_runner.app:create_app"],
    "console": ["-m", "sous_console"],
}
"""Every service, as the arguments of `python` that run it."""


def _command_line(pid: int) -> str:
    """The command line of a live process, or "" when it is gone (or cannot be seen)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        pass
    try:
        ps = ["ps", "-o", "args=", "-p", str(pid)]
        return subprocess.run(ps, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def recorded_pid(pid_file: Path, argv: list[str]) -> int | None:
    """Return the pid in `pid_file` when that process still runs `argv`, else None.

    Only the arguments after the interpreter are compared, so a pid the system gave to an
    unrelated process since is never signalled.
    """
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    line = _command_line(pid)
    return pid if line and line.endswith(" ".join(argv[1:])) else None


def stop_recorded(run_dir: Path, grace_s: float = 15.0) -> list[str]:
    """Stop the services whose pid files are in `run_dir`, supervisor or not; return their names.

    A supervisor that died (`kill -9`, a closed terminal) leaves its services running; their
    pid files are what is left to find them by.
    """
    found = {}
    for name in SERVICES:
        pid_file = run_dir / f"{name}.pid"
        pid = recorded_pid(pid_file, service_argv(name))
        if pid is not None:
            found[name] = pid
        pid_file.unlink(missing_ok=True)
    _stop_groups(list(found.values()), grace_s)
    return list(found)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return _command_line(pid) != ""  # a zombie has none


def _stop_groups(pids: list[int], grace_s: float) -> None:
    """SIGTERM each process group, then SIGKILL the ones still there after `grace_s`."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def service_argv(name: str) -> list[str]:
    """The command line of one service, or a clear error for an unknown name."""
    if name not in SERVICES:
        raise KeyError(f"unknown service {name!r} (services: {', '.join(SERVICES)})")
    return [sys.executable, *SERVICES[name]]


@dataclass
class Supervised:
    """One child process and its restart bookkeeping."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)


class Supervisor:
    """Keeps every service running, with logs in a run folder, until asked to stop."""

    def __init__(
        self,
        run_dir: Path,
        environments: dict[str, dict[str, str]],
        commands: Mapping[str, list[str]] | None = None,
    ) -> None:
        """Supervise the services named in `environments`, each with its own environment.

        `commands` replaces the command lines of `SERVICES` (tests supervise stand-ins).
        """
        self.run_dir = run_dir
        self.environments = environments
        run_dir.mkdir(parents=True, exist_ok=True)
        argv = commands or {n: service_argv(n) for n in environments}
        self.children = [Supervised(n, argv[n], run_dir / f"{n}.log") for n in environments]
        self.stopping = False

    def start(self, child: Supervised) -> None:
        """Start (or restart) one child, appending to its log."""
        log = child.log_path.open("ab")
        child.process = subprocess.Popen(
            child.argv,
            env=self.environments[child.name],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        child.started_at = time.monotonic()
        (self.run_dir / f"{child.name}.pid").write_text(str(child.process.pid))

    def start_all(self) -> None:
        """Start every child."""
        for child in self.children:
            self.start(child)

    def check(self) -> list[str]:
        """Restart children that exited (with backoff); return what happened, for people."""
        notes = []
        now = time.monotonic()
        for child in self.children:
            p = child.process
            if self.stopping or p is None or p.poll() is None:
                continue
            if child.next_start == 0.0:
                # A child that ran a while gets a fresh backoff; a crash loop waits longer.
                quick = now - child.started_at < 10
                child.restarts = child.restarts + 1 if quick else 1
                child.next_start = now + min(0.5 * 2 ** (child.restarts - 1), 30)
                notes.append(
                    f"{child.name} exited with {p.returncode}; restarting (see {child.log_path})"
                )
                self.note(notes[-1])
            elif now >= child.next_start:
                child.next_start = 0.0
                self.start(child)
        return notes

    def note(self, text: str) -> None:
        """Keep what happened in `supervisor.log` too: the terminal may be gone or scrolled."""
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with (self.run_dir / "supervisor.log").open("a") as log:
            log.write(f"{stamp} {text}\n")

    def pids(self) -> dict[str, int]:
        """Pid of every running child."""
        return {
            c.name: c.process.pid
            for c in self.children
            if c.process is not None and c.process.poll() is None
        }

    def stop_all(self, grace_s: float = 15.0) -> None:
        """SIGTERM every child, then SIGKILL what is still there after the grace period."""
        self.stopping = True
        for c in self.children:
            if c.process is not None and c.process.poll() is None:
                os.killpg(c.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for c in self.children:
            if c.process is None:
                continue
            try:
                c.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(c.process.pid, signal.SIGKILL)
                c.process.wait()
            (self.run_dir / f"{c.name}.pid").unlink(missing_ok=True)
