-- Dataset lineage of the read model (from OrderRunFinished): which recipe steps wrote and read
-- each dataset, in which kitchen, the last run that did, and how that step and its tests ended.
-- One row per (dataset, role, step, kitchen): it stays as small as the mesh, not its history.
CREATE TABLE dataset_uses (
    dataset text NOT NULL,
    role text NOT NULL CHECK (role IN ('writes', 'reads')),
    domain text NOT NULL,
    recipe text NOT NULL,
    step text NOT NULL,
    kitchen text NOT NULL,
    order_run_id uuid NOT NULL,
    status text NOT NULL,
    tests jsonb NOT NULL DEFAULT '{}',
    at timestamptz NOT NULL,
    PRIMARY KEY (dataset, role, domain, recipe, step, kitchen)
);
CREATE INDEX dataset_uses_domain ON dataset_uses (domain);
