"""What the registry purges, and when a row is old enough (`sous_common.retention`)."""

from __future__ import annotations

from sous_common.retention import Rule

SERVICE = "domain-registry"

RULES: tuple[Rule, ...] = (
    # The run read model: a run has `finished_at` only once it ended.
    Rule(
        "runs",
        "runs",
        "runs",
        "finished_at < $1",
        key="order_run_id",
        cascade=(
            ("run_steps", "order_run_id"),
            ("run_tests", "order_run_id"),
            ("run_edges", "downstream"),
        ),
    ),
    # The backfill read model: a backfill that ended (or was rejected), with its partitions.
    # Join windows that expired are runs (`join-expired`, with `finished_at`) and go above.
    Rule(
        "backfills",
        "backfills",
        "backfills",
        "status IN ('succeeded', 'failed', 'cancelled', 'rejected') AND updated_at < $1",
        key="backfill_id",
        cascade=(("backfill_partitions", "backfill_id"),),
    ),
    Rule("audit", "audit", "audit", "at < $1", key="id"),
)
"""The registry's retention rules, besides every service's inbox and refused outbox."""


def schema_name() -> str:
    """Return the schema the configured registry owns."""
    from sous_domain_registry.settings import RegistrySettings

    return RegistrySettings().schema_name
