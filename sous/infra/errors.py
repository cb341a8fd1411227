"""The one error the local infrastructure raises; the CLI prints it and exits 1.

InfraError (RuntimeError)   a server did not start, a tool is missing, a folder clashes
"""

from __future__ import annotations

import sys


class InfraError(RuntimeError):
    """A local server could not be started, stopped or found; the message says why."""


def log(message: str) -> None:
    """Report progress on stderr: stdout carries only the env lines (`eval "$(… up)"`)."""
    print(f"infra: {message}", file=sys.stderr, flush=True)
