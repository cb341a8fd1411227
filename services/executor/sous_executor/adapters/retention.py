"""What the executor purges, and when a row is old enough (`sous_common.retention`)."""

from __future__ import annotations

from sous_common.retention import Rule

SERVICE = "executor"

RULES: tuple[Rule, ...] = (
    # Only attempts that ended: a running one is how the executor knows what it owns.
    Rule("attempts", "attempts", "attempts", "status <> 'running' AND finished_at < $1"),
)
"""The executor's retention rules, besides every service's inbox and refused outbox."""


def schema_name() -> str:
    """Return the schema the configured executor owns."""
    from sous_executor.settings import ExecutorSettings

    return ExecutorSettings().schema_name
