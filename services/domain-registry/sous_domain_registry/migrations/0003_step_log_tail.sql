-- The end of a step attempt's log, as its StepFinished event carried it (secrets redacted).
ALTER TABLE run_steps ADD COLUMN log_tail text NOT NULL DEFAULT '';
