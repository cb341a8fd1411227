-- Retention (sous_common.retention): find ended attempts by age.
CREATE INDEX attempts_finished_at ON attempts (finished_at) WHERE status <> 'running';
