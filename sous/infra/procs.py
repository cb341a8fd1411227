"""Processes, ports and the run folder's lock, as the start and stop code needs them."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterator, Set
from pathlib import Path

from sous.infra.errors import InfraError, log
from sous.infra.layout import Ports


def pid_alive(pid: int | None) -> bool:
    """True while `pid` runs.

    A zombie (exited, not yet reaped) counts as gone: it holds no ports or files any more.
    """
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # "pid (comm) state …"; comm may hold spaces and parentheses.
    return not stat.rpartition(") ")[2].startswith("Z")


def cmdline(pid: int) -> str:
    """The command line of a process, or nothing."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def read_pid(path: Path) -> int | None:
    """The pid on the first line of a pid file, if it holds one."""
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def reap(pid: int) -> None:
    """Collect `pid` if it is our child (a server this process started), else nothing."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def wait_gone(pid: int, timeout_s: float) -> bool:
    """Wait until `pid` no longer runs; False when it still does after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid):
        reap(pid)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def free_ports(count: int, avoid: Set[int] = frozenset(), host: str = "127.0.0.1") -> list[int]:
    """Return `count` distinct ports the system finds free now, none of them in `avoid`.

    The sockets stay open until all are picked, so the system hands out no port twice;
    `avoid` holds ports chosen earlier but not listened on yet (the registry's, say).
    """
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            s = stack.enter_context(socket.socket())
            s.bind((host, 0))
            if (port := int(s.getsockname()[1])) not in avoid:
                ports.append(port)
        return ports


def port_is_free(port: int) -> bool:
    """True if a server could listen on 127.0.0.1:`port`.

    SO_REUSEADDR as Kafka and Postgres set it: TIME_WAIT leftovers of our own previous run
    do not make a port busy.
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError:
            return False
    return True


def choose_ports(
    remembered: Ports,
    *,
    kafka_up: bool,
    postgres_up: bool,
    is_free: Callable[[int], bool],
    fresh: list[int],
) -> Ports:
    """Choose the ports of a start.

    Running servers keep theirs; the others keep the remembered port while it is free and
    not taken by another of ours, else take the next of `fresh`.
    """
    pool = list(fresh)
    taken: set[int] = set()
    chosen: dict[str, int | None] = {}
    for name, running in (("kafka", kafka_up), ("controller", kafka_up), ("postgres", postgres_up)):
        port: int | None = getattr(remembered, name)
        if not running and (port is None or port in taken or not is_free(port)):
            if port is not None:
                log(f"port {port} ({name}) is busy, picking another")
            port = pool.pop(0)
        chosen[name] = port
        if port is not None:
            taken.add(port)
    return Ports(**chosen)


@contextlib.contextmanager
def locked(path: Path, timeout_s: float = 300) -> Iterator[None]:
    """Hold the run folder's lock.

    Two `make test` runs starting at once must not both initdb or format the same folders.
    Servers never inherit it (Python's fds are not inheritable).
    """
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise InfraError(
                        f"another infra command is still running (lock {path})"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def tail(path: Path, lines: int) -> str:
    """The last lines of a log, or nothing when it is missing."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
