-- Read model of backfills, fed by BackfillUpdated and BackfillRejected on the run topic.
CREATE TABLE backfills (
    backfill_id  uuid PRIMARY KEY,
    domain       text NOT NULL,
    recipe       text NOT NULL,
    variation    text,
    kitchen      text,
    range        jsonb NOT NULL,
    concurrency  integer NOT NULL,
    downstream   boolean NOT NULL DEFAULT false,
    status       text NOT NULL,               -- requested | running | succeeded | failed | cancelled | rejected
    counts       jsonb NOT NULL DEFAULT '{}',
    reason       text,
    requested_by text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backfills_domain ON backfills (domain, created_at DESC);

CREATE TABLE backfill_partitions (
    backfill_id  uuid NOT NULL REFERENCES backfills (backfill_id) ON DELETE CASCADE,
    key          text NOT NULL,
    state        text NOT NULL,
    order_run_id uuid,
    attempt      integer NOT NULL DEFAULT 0,
    reason       text,
    PRIMARY KEY (backfill_id, key)
);
