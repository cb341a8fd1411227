-- The durable purge timer of a schema (one row): when the next purge is due, and what the
-- last one did. `due_at` moves on only after a purge completed.
CREATE TABLE retention_timer (
    id               boolean     PRIMARY KEY DEFAULT true CHECK (id),
    due_at           timestamptz NOT NULL,
    last_started_at  timestamptz,
    last_finished_at timestamptz,
    last_purged      jsonb       NOT NULL DEFAULT '{}'::jsonb
);
-- Refused outbox rows are purged by age.
CREATE INDEX outbox_refused_refused_at ON outbox_refused (refused_at);
