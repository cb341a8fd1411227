"""Which replica ids in the attempts table belong to dead predecessors of this replica."""

from __future__ import annotations

from collections.abc import Callable


def _host_and_pid(worker_id: str) -> tuple[str, int] | None:
    """Split a default id `service@host:pid`; None for an id set in the settings."""
    host, sep, pid = worker_id.rpartition(":")
    if not sep or "@" not in host or not pid.isdigit():
        return None
    return host, int(pid)


def predecessor_is_dead(owner: str, me: str, alive: Callable[[int], bool]) -> bool:
    """True when the replica `owner` ran where this one runs and is gone.

    Called before this replica takes anything, so its own id marks a predecessor (a restarted
    container keeps host name and pid, a configured id survives restarts). Another pid on
    this host counts only when `alive(pid)` says that process is gone: replicas of a local
    stack share a host. Replicas elsewhere are never judged from here; their leases are.
    """
    if owner == me:
        return True
    mine, theirs = _host_and_pid(me), _host_and_pid(owner)
    if mine is None or theirs is None or mine[0] != theirs[0]:
        return False
    return not alive(theirs[1])
