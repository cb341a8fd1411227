-- The registry's present state, every version it ever held, tokens and the audit trail.
CREATE TABLE entities (
    entity_id text PRIMARY KEY,
    kind text NOT NULL,
    domain text,
    name text NOT NULL,
    version text NOT NULL,
    spec jsonb NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    changed_by text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX entities_domain ON entities (domain, kind) WHERE NOT deleted;

-- Immutable: a version is written once and never changed.
CREATE TABLE entity_versions (
    entity_id text NOT NULL,
    version text NOT NULL,
    spec jsonb NOT NULL,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity_id, version)
);
CREATE FUNCTION entity_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'spec versions are immutable';
END $$;
CREATE TRIGGER entity_versions_no_update BEFORE UPDATE OR DELETE ON entity_versions
    FOR EACH ROW EXECUTE FUNCTION entity_versions_immutable();

CREATE TABLE tokens (
    token_hash text PRIMARY KEY,
    principal text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX tokens_principal ON tokens (principal);

CREATE TABLE grants (
    principal text PRIMARY KEY,
    scopes jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    principal text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{}'
);

-- Read model of runs, fed by the run, step and test-result topics.
CREATE TABLE runs (
    order_run_id uuid PRIMARY KEY,
    domain text NOT NULL,
    recipe text NOT NULL,
    variation text,
    kitchen text,
    status text NOT NULL,
    reason text,
    params jsonb NOT NULL DEFAULT '{}',
    outputs jsonb NOT NULL DEFAULT '{}',
    tests jsonb NOT NULL DEFAULT '{}',
    requested_by text,
    started_at timestamptz,
    finished_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_domain ON runs (domain, recipe, updated_at DESC);
CREATE INDEX runs_kitchen ON runs (kitchen, updated_at DESC);

CREATE TABLE run_steps (
    order_run_id uuid NOT NULL,
    step text NOT NULL,
    attempt int NOT NULL,
    status text NOT NULL,
    reason text,
    outputs jsonb NOT NULL DEFAULT '{}',
    started_at timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (order_run_id, step, attempt)
);

CREATE TABLE run_tests (
    order_run_id uuid NOT NULL,
    step text NOT NULL,
    test text NOT NULL,
    kind text NOT NULL,
    severity text NOT NULL,
    status text NOT NULL,
    value jsonb,
    message text NOT NULL DEFAULT '',
    at timestamptz NOT NULL,
    PRIMARY KEY (order_run_id, step, test)
);
