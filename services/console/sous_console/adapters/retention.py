"""What the console purges, and when a row is old enough (`sous_common.retention`)."""

from __future__ import annotations

from sous_common.retention import Rule

SERVICE = "console"

RULES: tuple[Rule, ...] = (
    # A run has `finished_at` only once it ended; its steps, tests and completions go with it.
    Rule(
        "runs",
        "console",
        "runs",
        "finished_at < $1",
        key="order_run_id",
        cascade=(
            ("steps", "order_run_id"),
            ("test_results", "order_run_id"),
            ("completions", "order_run_id"),
            ("run_edges", "downstream"),
        ),
    ),
    # Backfills that ended (or were rejected), with the partitions they named; expired join
    # windows are runs (`join-expired`, with `finished_at`) and go with the runs above.
    Rule(
        "backfills",
        "console",
        "backfills",
        "status <> 'running' AND updated_at < $1",
        key="backfill_id",
        cascade=(("backfill_partitions", "backfill_id"),),
    ),
    # Completions of domains run by other tools belong to no run.
    Rule("completions", "console", "completions", "order_run_id IS NULL AND occurred_at < $1"),
)
"""The console's retention rules, besides every service's inbox and refused outbox."""


def schema_name() -> str:
    """Return the schema the configured console owns."""
    from sous_console.settings import ConsoleSettings

    return ConsoleSettings().db_schema
