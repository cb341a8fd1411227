-- Backfills: one order run per partition of a range, with bounded concurrency.
-- The backfill row is locked while partitions start or end, so two ends never overfill.
CREATE TABLE backfills (
    id          uuid PRIMARY KEY,
    domain      text NOT NULL,
    recipe      text NOT NULL,
    variation   text NOT NULL,
    kitchen     text NOT NULL,
    command     jsonb NOT NULL,          -- the StartBackfill as accepted
    concurrency integer NOT NULL,
    cancelled   text,                    -- why, once cancelled
    status      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE backfill_partitions (
    backfill_id  uuid NOT NULL REFERENCES backfills (id) ON DELETE CASCADE,
    position     integer NOT NULL,
    key          text NOT NULL,
    value        jsonb NOT NULL,
    state        text NOT NULL,
    attempt      integer NOT NULL DEFAULT 0,
    order_run_id uuid,
    reason       text,
    PRIMARY KEY (backfill_id, position)
);
CREATE UNIQUE INDEX backfill_partitions_run ON backfill_partitions (order_run_id);
CREATE INDEX backfill_partitions_waiting ON backfill_partitions (backfill_id, position)
    WHERE state = 'waiting';
