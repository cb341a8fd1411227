-- Every measured value of every test, per step and variation: trend tests read it back,
-- and the registry API and the console show it. One row per (suite, test), so a
-- redelivered RunTests never records twice.
CREATE TABLE test_history (
    id           bigserial        PRIMARY KEY,
    domain       text             NOT NULL,
    recipe       text             NOT NULL,
    step         text             NOT NULL,
    test         text             NOT NULL,
    kitchen      text             NOT NULL,
    variation    text             NOT NULL DEFAULT '',
    kind         text             NOT NULL,
    severity     text             NOT NULL,
    status       text             NOT NULL,
    value_num    double precision,
    value        jsonb,
    threshold    jsonb,
    message      text             NOT NULL DEFAULT '',
    duration_s   double precision NOT NULL DEFAULT 0,
    order_run_id uuid             NOT NULL,
    suite_id     uuid             NOT NULL,
    measured_at  timestamptz      NOT NULL,
    UNIQUE (suite_id, test)
);
CREATE INDEX test_history_series
    ON test_history (domain, recipe, step, test, kitchen, variation, measured_at DESC, id DESC);
