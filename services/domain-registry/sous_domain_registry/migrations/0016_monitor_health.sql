-- Latest result of each monitor (from TestSuiteFinished marked as a monitor's): the dataset
-- view shows it. One row per monitor and kitchen; an older check never overwrites a newer one.
CREATE TABLE monitor_health (
    domain    text        NOT NULL,
    monitor   text        NOT NULL,
    kitchen   text        NOT NULL,
    dataset   text        NOT NULL,
    passed    boolean     NOT NULL,   -- no failed or errored error-severity test
    summary   jsonb       NOT NULL,   -- counts by outcome
    results   jsonb       NOT NULL,   -- test name -> outcome
    check_id  uuid        NOT NULL,
    at        timestamptz NOT NULL,
    PRIMARY KEY (domain, monitor, kitchen)
);
CREATE INDEX monitor_health_dataset ON monitor_health (dataset);
