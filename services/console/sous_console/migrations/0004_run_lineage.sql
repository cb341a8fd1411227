-- Why each run started (OrderRunStarted.cause), and the edges upstream run -> downstream run.
ALTER TABLE runs ADD COLUMN cause jsonb;

CREATE TABLE run_edges (
    upstream uuid NOT NULL,
    downstream uuid NOT NULL,
    kind text NOT NULL,          -- trigger | nested
    via text,                    -- the trigger (`domain/recipe#name`) or the parent's step
    PRIMARY KEY (upstream, downstream)
);
CREATE INDEX run_edges_downstream ON run_edges (downstream);
