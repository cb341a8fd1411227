-- Run-once keys are scoped to (domain, recipe, kitchen), not global.
ALTER TABLE runs DROP CONSTRAINT IF EXISTS runs_idempotency_key_key;
CREATE UNIQUE INDEX runs_run_once ON runs (domain, recipe, kitchen, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Keyed joins: one window per (trigger, kitchen, key) with what arrived in it. The deadline is
-- a durable timer: windows past it are claimed with FOR UPDATE SKIP LOCKED and, when
-- half-joined, published as JoinWindowExpired.
CREATE TABLE join_windows (
    trigger_id text        NOT NULL,
    kitchen    text        NOT NULL,
    key        text        NOT NULL,
    window_id  uuid        NOT NULL,
    opened_at  timestamptz NOT NULL,
    deadline   timestamptz NOT NULL,
    arrivals   jsonb       NOT NULL DEFAULT '{}',
    fired      boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (trigger_id, kitchen, key)
);
CREATE INDEX join_windows_deadline ON join_windows (deadline);
