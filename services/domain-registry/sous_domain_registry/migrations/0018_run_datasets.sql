-- The datasets each step of a run read and wrote (OrderRunFinished.datasets): what impact
-- lists as written downstream of a bad test.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS datasets jsonb NOT NULL DEFAULT '[]'::jsonb;
