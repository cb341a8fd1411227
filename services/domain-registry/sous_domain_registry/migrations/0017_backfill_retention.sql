-- Retention (sous_common.retention): find finished backfills of the read model by age.
CREATE INDEX backfills_finished ON backfills (updated_at)
    WHERE status IN ('succeeded', 'failed', 'cancelled', 'rejected');
