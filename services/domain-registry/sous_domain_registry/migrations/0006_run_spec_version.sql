-- The recipe version a run used (from OrderRunStarted): merging a sandbox needs a passing run
-- of each version it changed.
ALTER TABLE runs ADD COLUMN spec_version text;
