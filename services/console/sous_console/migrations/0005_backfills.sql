-- Backfills as BackfillUpdated / BackfillRejected tell them: whole counts, partitions once named.
CREATE TABLE backfills (
    backfill_id uuid PRIMARY KEY,
    domain text NOT NULL,
    recipe text NOT NULL,
    variation text,
    kitchen text,
    range text NOT NULL DEFAULT '',
    concurrency int,
    downstream boolean NOT NULL DEFAULT false,
    status text NOT NULL,          -- running | succeeded | failed | cancelled | rejected
    total int NOT NULL DEFAULT 0,
    done int NOT NULL DEFAULT 0,
    failed int NOT NULL DEFAULT 0,
    running int NOT NULL DEFAULT 0,
    waiting int NOT NULL DEFAULT 0,
    cancelled int NOT NULL DEFAULT 0,
    principal text,
    reason text,                   -- why it was cancelled or rejected
    refused text,                  -- the last Cancel / Retry the scheduler refused, and why
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX backfills_newest ON backfills (created_at DESC, backfill_id);
-- Retention (sous_common.retention): finished backfills by age.
CREATE INDEX backfills_finished ON backfills (updated_at) WHERE status <> 'running';

CREATE TABLE backfill_partitions (
    backfill_id uuid NOT NULL,
    key text NOT NULL,
    state text NOT NULL,
    attempt int NOT NULL DEFAULT 0,
    order_run_id uuid,
    reason text,
    PRIMARY KEY (backfill_id, key)
);
