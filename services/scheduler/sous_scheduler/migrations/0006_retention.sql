-- Retention (sous_common.retention): find old finished runs, their parents and children,
-- and old firings without a full scan.
CREATE INDEX runs_finished ON runs (updated_at) WHERE phase IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX runs_parent ON runs (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX trigger_firings_fired_at ON trigger_firings (fired_at);
CREATE INDEX cron_fires_fire_time ON cron_fires (fire_time);
