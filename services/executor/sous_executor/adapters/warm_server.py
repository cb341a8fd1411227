"""The warm parent of python steps: a fork server that has already imported what steps use.

Run as `python -m sous_executor.adapters.warm_server SOCKET ROOTS_JSON` by the executor (one
per domain). It imports the step wrapper's own modules, binds the Unix socket, prints
`ready`, then for each connection reads one request (a JSON line with the step's
environment, working folder and target, plus the write end of the output pipe as an
ancillary file descriptor), forks a child and answers `started PID`, later `exit CODE`
(negative: killed by that signal). Closing the connection kills the child's group.

The child starts a session (its own process group, so timeout and cancel kill it with its
children), dies with the parent (`PR_SET_PDEATHSIG`), takes the step's environment and
folder, imports the step's module itself and calls it through `python_call` exactly as a
fresh interpreter would. So the domain's code is never imported here and a new version of
it is always what runs. What the parent learns is only libraries: each child reports the
modules it imported from outside the domain's code folders, and the parent imports them
between forks, so the next step finds them loaded. When a file of a loaded module changes
(an upgraded library), the parent answers `stale` and drains; the executor starts another.

End of file on stdin (the executor is gone or retires this parent) stops new forks; the
parent exits when its last child has. SIGTERM kills the children's groups and exits at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sous_executor.adapters import python_call

_PR_SET_PDEATHSIG = 1
_REQUEST_MAX = 8 * 1024 * 1024
_REPORT_MAX = 60_000
"""Bytes of module names a child reports: below a pipe's buffer, so its write never blocks."""
_STALE_CHECK_S = 1.0


class _Child:
    def __init__(self, pid: int, conn: socket.socket, report: int) -> None:
        self.pid = pid
        self.conn = conn
        self.report = report


class Server:
    """The warm parent's state: its socket, its children, the modules it has loaded."""

    def __init__(self, path: str, roots: list[str]) -> None:
        self.roots = [str(Path(r).resolve()) for r in roots]
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(64)
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, _Child] = {}
        self.draining = False
        self.pending: set[str] = set()
        self.tried: set[str] = set()
        self.files: dict[str, int] = {}
        self.checked = 0.0
        pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        # sys.path after the parent's own head: the child puts its own head before it.
        self.path_tail = [p for p in sys.path[1:] if p not in pythonpath]
        self.prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._terminate)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
        self._remember_files()

    def _terminate(self, *_: Any) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        os._exit(0)

    def serve(self) -> None:
        """Answer requests until drained; load what children reported while idle."""
        while not (self.draining and not self.children):
            events = self.selector.select(timeout=None if not self.pending else 0)
            if not events:
                self._preload(self.pending.pop())
            for key, _ in events:
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wake_r, 4096)
                    self._reap()
                elif key.data == "stdin":
                    self._drain()
                else:
                    self._hang_up(key.data)

    def _drain(self) -> None:
        self.draining = True
        for fd in (sys.stdin.fileno(), self.listener):
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(fd)
        self.listener.close()

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        child: _Child | None = None
        try:
            conn.settimeout(5.0)
            request, fds = _receive(conn)
            try:
                if self._stale():
                    conn.sendall(b"stale\n")
                    self._drain()
                    conn.close()
                    return
                child = self._fork(conn, request, fds[0])
                self.children[child.pid] = child
            finally:
                for fd in fds:
                    os.close(fd)
            conn.sendall(f"started {child.pid}\n".encode())
        except (OSError, ValueError) as exc:
            if child is not None:  # nobody would hear of it: it goes, and is reaped later
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, signal.SIGKILL)
            else:
                with contextlib.suppress(OSError):
                    conn.sendall(f"error {exc}\n".encode())
            conn.close()
            return
        conn.setblocking(False)
        self.selector.register(conn, selectors.EVENT_READ, child.pid)

    def _fork(self, conn: socket.socket, request: dict[str, Any], out: int) -> _Child:
        report_r, report_w = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 70
            try:
                os.close(report_r)
                code = self._child(parent, request, out, report_w)
            finally:
                os._exit(code)
        os.close(report_w)
        os.set_blocking(report_r, False)
        return _Child(pid, conn, report_r)

    def _child(self, parent: int, request: dict[str, Any], out: int, report: int) -> int:
        os.setsid()
        if self.prctl is not None:
            self.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the line above
            return 137
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        self.selector.close()
        self.listener.close()
        for child in self.children.values():
            child.conn.close()
            os.close(child.report)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        for fd in (null, out, self.wake_r):
            os.close(fd)
        env: dict[str, str] = request["env"]
        os.environ.clear()
        os.environ.update(env)
        os.chdir(request["cwd"])
        head = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:] = [request["cwd"], *head, *self.path_tail]
        importlib.invalidate_caches()
        before = set(sys.modules)
        code = python_call.main(request["target"])
        _report(report, self._libraries(set(sys.modules) - before, request))
        _run_exit_functions()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        return code

    def _libraries(self, names: set[str], request: dict[str, Any]) -> list[str]:
        """Modules outside the domain's code: worth loading in the parent for the next step."""
        roots = [*self.roots, str(Path(request["cwd"]).resolve())]
        step_module = request["target"].partition(":")[0]
        found = []
        for name in names:
            module = sys.modules.get(name)
            origin = getattr(module, "__file__", None)
            if name == step_module or name == "__main__":
                continue
            if origin is not None:
                resolved = str(Path(origin).resolve())
                if any(resolved.startswith(root + os.sep) for root in roots):
                    continue
            found.append(name)
        return sorted(found)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            self._learn(child.report)
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(child.conn)
            with contextlib.suppress(OSError):
                child.conn.setblocking(True)
                child.conn.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
            child.conn.close()

    def _hang_up(self, pid: int) -> None:
        """The executor closed a child's connection (cancel, its own trouble): kill the group."""
        child = self.children.get(pid)
        if child is None:
            return
        with contextlib.suppress(BlockingIOError, OSError):
            if child.conn.recv(1):
                return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(child.conn)

    def _learn(self, report: int) -> None:
        data = b""
        with contextlib.suppress(BlockingIOError, OSError):
            data = os.read(report, _REPORT_MAX)
        os.close(report)
        names = {n for n in data.decode(errors="replace").split("\n") if n}
        self.pending |= names - self.tried - set(sys.modules)

    def _preload(self, name: str) -> None:
        self.tried.add(name)
        if self.draining or name in sys.modules:
            return
        threads = threading.active_count()
        try:
            importlib.import_module(name)
        except BaseException as exc:  # a library that cannot load here simply stays cold
            print(f"warm parent: not preloading {name}: {exc!r}", file=sys.stderr, flush=True)
        self._remember_files()
        if threading.active_count() != threads:
            # Forking with threads running is unsafe: let a fresh parent take over.
            print(f"warm parent: {name} started a thread; retiring", file=sys.stderr, flush=True)
            self._drain()

    def _remember_files(self) -> None:
        for module in list(sys.modules.values()):
            origin = getattr(module, "__file__", None)
            if isinstance(origin, str) and origin not in self.files:
                with contextlib.suppress(OSError):
                    self.files[origin] = os.stat(origin).st_mtime_ns
        self.checked = time.monotonic()

    def _stale(self) -> bool:
        """Whether a loaded module's file changed since it was loaded (checked once a second)."""
        now = time.monotonic()
        if now - self.checked < _STALE_CHECK_S:
            return False
        self.checked = now
        for origin, mtime in self.files.items():
            try:
                if os.stat(origin).st_mtime_ns != mtime:
                    return True
            except OSError:
                return True
        return False


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """Read one request line and the output pipe's descriptor sent with it."""
    chunks: list[bytes] = []
    fds: list[int] = []
    size = 0
    while not chunks or not chunks[-1].endswith(b"\n"):
        data, got, _, _ = socket.recv_fds(conn, 65_536, 1)
        fds.extend(got)
        if not data:
            raise ValueError("connection closed before the request ended")
        chunks.append(data)
        size += len(data)
        if size > _REQUEST_MAX:
            raise ValueError("request too large")
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise ValueError("expected the output pipe with the request")
    request = json.loads(b"".join(chunks))
    if not isinstance(request, dict):
        raise ValueError("request must be an object")
    return request, fds


def _report(fd: int, names: list[str]) -> None:
    data = "\n".join(names).encode()[:_REPORT_MAX]
    with contextlib.suppress(OSError):
        os.write(fd, data)
    os.close(fd)


def _run_exit_functions() -> None:
    # A fresh interpreter runs atexit hooks on exit; a forked child leaves with os._exit.
    import atexit

    run = getattr(atexit, "_run_exitfuncs", None)
    if run is not None:
        with contextlib.suppress(Exception):
            run()


def main() -> None:  # pragma: no cover - runs as the warm parent
    """Bind, say ready, serve."""
    path, roots = sys.argv[1], json.loads(sys.argv[2])
    server = Server(path, roots)
    print("ready", flush=True)
    server.serve()


if __name__ == "__main__":
    main()
