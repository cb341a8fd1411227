-- The console's read model: runs, step attempts, test results, completions, registry entities.
CREATE TABLE runs (
    order_run_id uuid PRIMARY KEY,
    domain text,
    recipe text,
    variation text,
    kitchen text,
    status text NOT NULL DEFAULT 'queued',
    reason text,
    params jsonb NOT NULL DEFAULT '{}',
    parent_order_run_id uuid,
    correlation_id uuid,
    principal text,
    queued_at timestamptz,
    started_at timestamptz,
    finished_at timestamptz,
    tests_pass int NOT NULL DEFAULT 0,
    tests_fail int NOT NULL DEFAULT 0,
    tests_warn int NOT NULL DEFAULT 0,
    seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_newest ON runs (seen_at DESC, order_run_id);
CREATE INDEX runs_by_domain ON runs (domain, seen_at DESC);
CREATE INDEX runs_last_of_recipe ON runs (domain, recipe, kitchen, seen_at DESC);
CREATE INDEX runs_chain ON runs (correlation_id);

CREATE TABLE steps (
    step_run_id uuid NOT NULL,
    attempt int NOT NULL,
    order_run_id uuid NOT NULL,
    step text NOT NULL,
    status text NOT NULL,
    worker_id text,
    started_at timestamptz,
    finished_at timestamptz,
    duration_s double precision,
    log_tail text NOT NULL DEFAULT '',
    error jsonb,
    PRIMARY KEY (step_run_id, attempt)
);
CREATE INDEX steps_of_run ON steps (order_run_id);

CREATE TABLE test_results (
    message_id uuid PRIMARY KEY,
    order_run_id uuid NOT NULL,
    step text NOT NULL,
    test text NOT NULL,
    kind text NOT NULL,
    severity text NOT NULL,
    status text NOT NULL,
    domain text NOT NULL,
    recipe text NOT NULL,
    kitchen text NOT NULL,
    variation text,
    value jsonb,
    threshold jsonb,
    message text NOT NULL DEFAULT '',
    occurred_at timestamptz NOT NULL
);
CREATE INDEX test_results_of_run ON test_results (order_run_id);
CREATE INDEX test_results_newest ON test_results (occurred_at DESC);
CREATE INDEX test_results_series ON test_results (domain, recipe, step, test, kitchen, occurred_at DESC);

CREATE TABLE completions (
    message_id uuid PRIMARY KEY,
    order_run_id uuid,
    domain text NOT NULL,
    recipe text NOT NULL,
    variation text,
    kitchen text NOT NULL,
    status text NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX completions_of_run ON completions (order_run_id);

CREATE TABLE entities (
    entity_id text NOT NULL,
    kitchen text NOT NULL DEFAULT '',
    kind text NOT NULL,
    domain text,
    name text NOT NULL,
    version text NOT NULL,
    spec jsonb NOT NULL DEFAULT '{}',
    deleted boolean NOT NULL DEFAULT false,
    PRIMARY KEY (entity_id, kitchen)
);
