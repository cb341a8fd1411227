"""Warm python steps, the executor's side: one fork server per domain, started on demand.

A python step forks from its domain's warm parent (`warm_server`) instead of starting an
interpreter. The parent runs in its own session (the SIGTERM or Ctrl-C meant for the executor
does not reach it, so the shutdown grace holds) and dies with the executor
(`PR_SET_PDEATHSIG`); its children die with it. A parent found dead, or one that reports a
changed library file (`stale`), is replaced on the next step; the least recently used is
retired when more than `warm_parents_max` domains are warm. When no parent can be had, the
step runs cold.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sous_common.logs import get_logger
from sous_executor.adapters.context import StepContext
from sous_executor.adapters.process import PRCTL, die_with_parent, watch
from sous_executor.settings import ExecutorSettings

log = get_logger(__name__)

_START_S = 20.0
"""Seconds a new warm parent gets to say `ready`."""
_ANSWER_S = 30.0
"""Seconds a warm parent gets to fork (it may be loading a library between forks)."""


class WarmUnavailable(Exception):
    """No warm parent could take the step; it runs cold."""


class WarmChild:
    """A step process forked by a warm parent; its exit arrives on the connection."""

    def __init__(
        self, pid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.pid = pid
        self.parent_died = False
        self._reader = reader
        self._writer = writer
        self._exit: asyncio.Task[int] | None = None

    async def wait(self) -> int:
        """Return the exit code; may be awaited again after a cancelled wait."""
        if self._exit is None:
            self._exit = asyncio.create_task(self._read_exit())
        return await asyncio.shield(self._exit)

    async def _read_exit(self) -> int:
        line = await self._reader.readline()
        if line.startswith(b"exit "):
            return int(line.split()[1])
        # The connection ended without an exit: the parent died, and its child with it.
        self.parent_died = True
        return -9

    def close(self) -> None:
        """Drop the connection; a parent still holding the child kills its group."""
        if self._exit is not None and not self._exit.done():
            self._exit.cancel()
        self._writer.close()


@dataclass
class _Parent:
    proc: asyncio.subprocess.Process
    folder: Path

    @property
    def socket(self) -> str:
        return str(self.folder / "s")

    def alive(self) -> bool:
        return self.proc.returncode is None

    def retire(self) -> None:
        """Stop its forks; it exits once its last child has."""
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    async def stopped(self, grace_s: float) -> None:
        self.retire()
        try:
            await asyncio.wait_for(self.proc.wait(), grace_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


class WarmPool:
    """The replica's warm parents, one per domain."""

    def __init__(self, settings: ExecutorSettings) -> None:
        self.settings = settings
        self._parents: OrderedDict[str, _Parent] = OrderedDict()
        self._retired: list[_Parent] = []
        self._locks: dict[str, asyncio.Lock] = {}

    def parent_pid(self, domain: str) -> int | None:
        """The pid of the domain's warm parent, if one runs."""
        parent = self._parents.get(domain)
        return parent.proc.pid if parent is not None and parent.alive() else None

    async def spawn(self, domain: str, request: Mapping[str, object], output: int) -> WarmChild:
        """Fork the step from the domain's warm parent; `output` becomes its stdout and stderr.

        Raises:
            WarmUnavailable: no parent could fork it (the caller runs the step cold).
        """
        for _ in range(2):
            parent = await self._parent(domain)
            answer, child = await self._ask(parent, request, output)
            if child is not None:
                return child
            log.warning("warm parent replaced", domain=domain, answer=answer)
            self._retire(domain, parent)
        raise WarmUnavailable(f"no warm parent for domain {domain!r}")

    async def _ask(
        self, parent: _Parent, request: Mapping[str, object], output: int
    ) -> tuple[str, WarmChild | None]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_connect(sock, parent.socket)
            data = json.dumps(request).encode() + b"\n"
            socket.send_fds(sock, [data[:1]], [output])
            await loop.sock_sendall(sock, data[1:])
            reader, writer = await asyncio.open_unix_connection(sock=sock)
        except OSError as exc:
            sock.close()
            return f"cannot connect: {exc}", None
        try:
            line = await asyncio.wait_for(reader.readline(), _ANSWER_S)
        except BaseException:
            writer.close()  # a fork that may have happened is killed by the parent
            raise
        if line.startswith(b"started "):
            return "started", WarmChild(int(line.split()[1]), reader, writer)
        writer.close()
        return line.decode(errors="replace").strip() or "connection closed", None

    async def _parent(self, domain: str) -> _Parent:
        lock = self._locks.setdefault(domain, asyncio.Lock())
        async with lock:
            parent = self._parents.get(domain)
            if parent is not None and parent.alive():
                self._parents.move_to_end(domain)
                return parent
            if parent is not None:
                log.warning("warm parent died; starting another", domain=domain)
                self._retire(domain, parent)
            parent = self._parents[domain] = await self._start(domain)
            while len(self._parents) > self.settings.warm_parents_max:
                old_domain, old = next(iter(self._parents.items()))
                self._retire(old_domain, old)
            return parent

    def _retire(self, domain: str, parent: _Parent) -> None:
        if self._parents.get(domain) is parent:
            del self._parents[domain]
        parent.retire()
        self._retired = [p for p in self._retired if p.alive()]
        self._retired.append(parent)

    async def _start(self, domain: str) -> _Parent:
        settings = self.settings
        folder = Path(tempfile.mkdtemp(prefix="sous-warm-"))
        roots = [*settings.python_path]
        if settings.domains_root is not None:
            roots.append(str(settings.domains_root / domain))
        env = {k: os.environ[k] for k in settings.pass_env if k in os.environ}
        paths = [*settings.python_path]
        if existing := os.environ.get("PYTHONPATH"):
            paths.append(existing)
        env["PYTHONPATH"] = os.pathsep.join(paths)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "sous_executor.adapters.warm_server",
                str(folder / "s"),
                json.dumps(roots),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
                cwd=folder,
                start_new_session=True,
                preexec_fn=die_with_parent if PRCTL is not None else None,
            )
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise WarmUnavailable(f"cannot start a warm parent: {exc}") from exc
        parent = _Parent(proc, folder)
        assert proc.stdout is not None
        try:
            ready = await asyncio.wait_for(proc.stdout.readline(), _START_S)
        except BaseException:
            await parent.stopped(0)
            raise
        if ready != b"ready\n":
            await parent.stopped(0)
            raise WarmUnavailable(f"warm parent for {domain!r} did not start")
        log.info("warm parent started", domain=domain, pid=proc.pid)
        return parent

    async def stop(self) -> None:
        """Retire every parent (their steps are over by now) and wait for them."""
        parents = [*self._parents.values(), *self._retired]
        self._parents.clear()
        self._retired.clear()
        await asyncio.gather(*(p.stopped(5.0) for p in parents))


async def run_warm(
    context: StepContext, pool: WarmPool, target: str, env: Mapping[str, str]
) -> int | None:
    """Run a python step forked from its domain's warm parent; return the exit code.

    Returns None when no warm parent could take it (nothing of the step ran).
    """
    read_end, write_end = os.pipe()
    request = {"target": target, "env": dict(env), "cwd": str(context.folder)}
    try:
        child = await pool.spawn(context.command.domain, request, write_end)
    except WarmUnavailable as exc:
        os.close(read_end)
        log.warning("python step runs cold", reason=str(exc), step=context.command.step)
        return None
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    loop = asyncio.get_running_loop()
    output = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(output), os.fdopen(read_end, "rb", buffering=0)
    )
    try:
        code = await watch(context, child, output)
    finally:
        transport.close()
        child.close()
    if child.parent_died:
        context.tail.line("[sous] the warm interpreter it was forked from died; so did the step")
    return code
