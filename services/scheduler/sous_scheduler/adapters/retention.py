"""What the scheduler purges, and when a row is old enough (`sous_common.retention`)."""

from __future__ import annotations

from sous_common.retention import Rule

SERVICE = "scheduler"

_OPEN = "('queued', 'running')"

# A held firing's trigger (`domain/recipe#name`, or `#index` when unnamed) in any live version
# of its recipe (base or a kitchen's).
_DECLARED_TRIGGER = (
    "SELECT 1 FROM registry r, jsonb_array_elements(coalesce(r.spec->'triggers', '[]'))"
    " WITH ORDINALITY AS t(spec, i)"
    " WHERE r.kind = 'recipe' AND NOT r.deleted"
    " AND r.domain || '/' || r.name = split_part(held_firings.trigger_id, '#', 1)"
    " AND coalesce(t.spec->>'name', (t.i - 1)::text) = split_part(held_firings.trigger_id, '#', 2)"
)
# A monitor (`domain/name`) in its live domain spec.
_DECLARED_MONITOR = (
    "SELECT 1 FROM registry r WHERE r.kind = 'domain' AND NOT r.deleted"
    " AND r.name = split_part(monitor_health.monitor_id, '/', 1)"
    " AND coalesce(r.spec->'monitors', '{}') ? split_part(monitor_health.monitor_id, '/', 2)"
)

RULES: tuple[Rule, ...] = (
    # A finished run, with its steps (in its state) and any timer left behind. A run whose
    # parent or child is still open stays: that run may still need to read or notify it.
    Rule(
        "runs",
        "runs",
        "runs",
        "phase IN ('succeeded', 'failed', 'cancelled') AND updated_at < $1"
        " AND NOT EXISTS (SELECT 1 FROM runs p"
        f" WHERE p.id = runs.parent_id AND p.phase IN {_OPEN})"
        " AND NOT EXISTS (SELECT 1 FROM runs c"
        f" WHERE c.parent_id = runs.id AND c.phase IN {_OPEN})",
        key="id",
        cascade=(("timers", "order_run_id"),),
    ),
    # A finished backfill with its partitions; its runs go by the rule above. A partition
    # still waiting or running keeps it (a cancel is under way), whatever its status says.
    Rule(
        "backfills",
        "backfills",
        "backfills",
        "status IN ('succeeded', 'failed', 'cancelled') AND updated_at < $1"
        " AND NOT EXISTS (SELECT 1 FROM backfill_partitions p"
        " WHERE p.backfill_id = backfills.id AND p.state IN ('waiting', 'running'))",
        key="id",
        cascade=(("backfill_partitions", "backfill_id"),),
    ),
    # Join windows need no rule: each is deleted when its deadline passes (a durable timer).
    # A firing still held (`require: monitors_pass`) stays: its release updates it, and it
    # keeps a replay of its upstream event from firing the trigger a second time.
    Rule(
        "trigger_firings",
        "firings",
        "trigger_firings",
        "fired_at < $1 AND NOT EXISTS (SELECT 1 FROM held_firings h"
        " WHERE h.trigger_id = trigger_firings.trigger_id"
        " AND h.upstream_message_id = trigger_firings.upstream_message_id)",
    ),
    # A released held firing is deleted as it starts its run. One whose trigger is no longer
    # declared has expired: nothing can release it. One whose trigger is declared still holds
    # the trigger and stays, however old.
    Rule(
        "held_firings",
        "firings",
        "held_firings",
        f"held_at < $1 AND NOT EXISTS ({_DECLARED_TRIGGER})",
    ),
    # The latest result of a monitor stays while the monitor is declared (a hold reads it).
    Rule(
        "monitor_health",
        "firings",
        "monitor_health",
        f"checked_at < $1 AND NOT EXISTS ({_DECLARED_MONITOR})",
    ),
    # The latest fire of each schedule stays: it is how the scheduler knows where it was.
    Rule(
        "cron_fires",
        "firings",
        "cron_fires",
        "fire_time < $1 AND fire_time < (SELECT max(f.fire_time) FROM cron_fires f"
        " WHERE f.schedule_id = cron_fires.schedule_id)",
    ),
)
"""The scheduler's retention rules, besides every service's inbox and refused outbox."""


def schema_name() -> str:
    """Return the schema the configured scheduler owns."""
    from sous_scheduler.settings import SchedulerSettings

    return SchedulerSettings().schema_name
