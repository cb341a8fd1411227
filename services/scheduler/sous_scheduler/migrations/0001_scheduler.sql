-- What the scheduler knows of the registry, rebuilt from sous.registry.changelog alone.
CREATE TABLE registry (
    entity_id  text PRIMARY KEY,
    kind       text NOT NULL,
    domain     text,
    name       text NOT NULL,
    version    text NOT NULL,
    spec       jsonb NOT NULL,
    deleted    boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX registry_kind ON registry (kind) WHERE NOT deleted;

-- Order runs: the frozen run state and the compiled recipe it runs.
CREATE TABLE runs (
    id              uuid PRIMARY KEY,
    domain          text NOT NULL,
    recipe          text NOT NULL,
    variation       text NOT NULL,
    kitchen         text NOT NULL,
    phase           text NOT NULL,
    state           jsonb NOT NULL,
    recipe_spec     jsonb NOT NULL,
    idempotency_key text UNIQUE,
    parent_id       uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_open ON runs (domain, recipe, variation, created_at)
    WHERE phase IN ('queued', 'running');

-- Durable timers: leases, timeouts, retry waits; claimed with FOR UPDATE SKIP LOCKED.
CREATE TABLE timers (
    order_run_id uuid        NOT NULL,
    kind         text        NOT NULL,
    step         text        NOT NULL DEFAULT '',
    attempt      int         NOT NULL,
    due_at       timestamptz NOT NULL,
    PRIMARY KEY (order_run_id, kind, step)
);
CREATE INDEX timers_due ON timers (due_at);

-- At most one run per (trigger, upstream event).
CREATE TABLE trigger_firings (
    trigger_id          text        NOT NULL,
    upstream_message_id uuid        NOT NULL,
    order_run_id        uuid,
    outcome             text        NOT NULL,
    fired_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (trigger_id, upstream_message_id)
);

-- Join state of `all` / `at_least` triggers, visible to operators.
CREATE TABLE trigger_joins (
    trigger_id text        NOT NULL,
    kitchen    text        NOT NULL,
    pattern    int         NOT NULL,
    message_id uuid        NOT NULL,
    arrived_at timestamptz NOT NULL,
    event      jsonb       NOT NULL,
    PRIMARY KEY (trigger_id, kitchen, pattern)
);

-- Cron: one run per (schedule, fire time), whichever replica gets there first.
CREATE TABLE cron_fires (
    schedule_id  text        NOT NULL,
    fire_time    timestamptz NOT NULL,
    order_run_id uuid,
    PRIMARY KEY (schedule_id, fire_time)
);
