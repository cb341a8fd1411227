-- How far the scheduler has read each partition of the step events (DESIGN §5.10): a lease
-- expires only when every partition is read past its deadline.
CREATE TABLE read_marks (
    partition    int PRIMARY KEY,
    read_through timestamptz NOT NULL
);
