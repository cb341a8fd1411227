"""The reaper: a helper process that kills step process groups when the executor dies.

A SIGKILLed executor cannot clean up; `PR_SET_PDEATHSIG` only reaches its direct children.
So each replica starts one small helper and tells it, over a pipe, which process groups are
running steps. When the executor dies, however it dies, the kernel closes the pipe; the helper
reads end-of-file and SIGKILLs every group still registered, grandchildren included.

Run as `python -m sous_executor.adapters.reaper`; it reads `+PGID` / `-PGID` lines on stdin.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

from sous_common.logs import get_logger

log = get_logger(__name__)


class Reaper:
    """The executor's side: start the helper, register and forget process groups."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the helper in its own session, so signals meant for the executor miss it."""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "sous_executor.adapters.reaper"],
            stdin=subprocess.PIPE,
            start_new_session=True,
        )

    def _send(self, line: str) -> None:
        if self._proc is None:
            self.start()
        assert self._proc is not None
        if self._proc.stdin is None:
            return
        try:
            self._proc.stdin.write(line.encode())
            self._proc.stdin.flush()
        except OSError as exc:  # the helper is gone; steps still die on timeout and cancel
            log.warning("reaper unavailable", error=repr(exc))

    def add(self, pgid: int) -> None:
        """Register a step's process group."""
        self._send(f"+{pgid}\n")

    def discard(self, pgid: int) -> None:
        """Forget a process group that is over."""
        self._send(f"-{pgid}\n")

    def stop(self) -> None:
        """Close the pipe (the helper kills what is left) and wait for it."""
        if self._proc is not None and self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)


def main() -> None:  # pragma: no cover - runs as the helper process
    """Track groups from stdin; on end-of-file kill every one still registered."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin.buffer:
        text = line.strip().decode()
        if text[1:].isdigit():
            (groups.add if text[0] == "+" else groups.discard)(int(text[1:]))
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


if __name__ == "__main__":
    main()
