-- Run lineage: why each run started, and the edges upstream run -> downstream run.
ALTER TABLE runs ADD COLUMN cause jsonb;

-- One edge per (upstream, downstream): a trigger's upstream completion, or a parent's nested step.
CREATE TABLE run_edges (
    upstream uuid NOT NULL,
    downstream uuid NOT NULL,
    kind text NOT NULL,          -- trigger | nested
    trigger text,                -- the trigger (`domain/recipe#name`) or the parent's step
    PRIMARY KEY (upstream, downstream)
);
-- The primary key walks down; this walks up.
CREATE INDEX run_edges_downstream ON run_edges (downstream, upstream);

-- Impact from one test result: its message id finds its run.
ALTER TABLE run_tests ADD COLUMN result_id uuid;
CREATE INDEX run_tests_result_id ON run_tests (result_id) WHERE result_id IS NOT NULL;
