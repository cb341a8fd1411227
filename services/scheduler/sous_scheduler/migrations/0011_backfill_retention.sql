-- Retention (sous_common.retention): find finished backfills by age.
CREATE INDEX backfills_finished ON backfills (updated_at) WHERE status <> 'running';
