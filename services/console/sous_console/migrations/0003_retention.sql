-- Retention (sous_common.retention): find old finished runs and lone completions by age.
CREATE INDEX runs_finished_at ON runs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX completions_occurred_at ON completions (occurred_at) WHERE order_run_id IS NULL;
