-- Monitors: the latest result of each monitor, and trigger firings held until they pass.
-- Cron fires of monitors share cron_fires (schedule_id `monitor:<domain>/<name>@<kitchen>`).
CREATE TABLE monitor_health (
    monitor_id   text        NOT NULL,   -- domain/name
    kitchen      text        NOT NULL,
    dataset      text        NOT NULL,
    passed       boolean     NOT NULL,   -- no failed error-severity test
    failed_tests text[]      NOT NULL DEFAULT '{}',
    check_id     uuid        NOT NULL,
    checked_at   timestamptz NOT NULL,
    PRIMARY KEY (monitor_id, kitchen)
);

-- A `require: monitors_pass` firing that waits: released (and started) by the first passing
-- result after which every monitor of its datasets passed.
CREATE TABLE held_firings (
    trigger_id          text        NOT NULL,
    upstream_message_id uuid        NOT NULL,
    order_run_id        uuid        NOT NULL,   -- the run it starts when released (TriggerHeld)
    kitchen             text        NOT NULL,
    datasets            text[]      NOT NULL,
    event               jsonb       NOT NULL,   -- the upstream DomainRunCompleted
    key                 text,
    held_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (trigger_id, upstream_message_id)
);
CREATE INDEX held_firings_kitchen ON held_firings (kitchen);
