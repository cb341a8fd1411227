-- Retention (sous_common.retention): find old finished runs and audit entries by age.
CREATE INDEX runs_finished_at ON runs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX run_steps_run ON run_steps (order_run_id);
CREATE INDEX audit_at ON audit (at);
