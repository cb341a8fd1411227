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
    # The dataset view's last use of a dataset by a step: once the run it names is as old as
    # a purged run, the step has not touched the dataset for that long (removed, or idle).
    Rule("dataset_uses", "runs", "dataset_uses", "at < $1"),
    # A monitor's latest result stays while the monitor is declared in its live domain.
    Rule(
        "monitor_health",
        "runs",
        "monitor_health",
        "at < $1 AND NOT EXISTS (SELECT 1 FROM entities e"
        " WHERE e.kind = 'domain' AND NOT e.deleted AND e.name = monitor_health.domain"
        " AND coalesce(e.spec->'monitors', '{}') ? monitor_health.monitor)",
    ),
)
"""The registry's retention rules, besides every service's inbox and refused outbox."""


def schema_name() -> str:
    """Return the schema the configured registry owns."""
    from sous_domain_registry.settings import RegistrySettings

    return RegistrySettings().schema_name
