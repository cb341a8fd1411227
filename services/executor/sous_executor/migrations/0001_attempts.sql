-- Attempts this executor group has taken: the dedup record of (step_run_id, attempt).
CREATE TABLE attempts (
    step_run_id  uuid        NOT NULL,
    attempt      int         NOT NULL,
    order_run_id uuid        NOT NULL,
    step         text        NOT NULL,
    worker_id    text        NOT NULL,
    message_id   uuid        NOT NULL,
    status       text        NOT NULL DEFAULT 'running',
    taken_at     timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    PRIMARY KEY (step_run_id, attempt)
);
CREATE INDEX attempts_taken_at ON attempts (taken_at);
