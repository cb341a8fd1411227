-- Versions applied into one kitchen (a sandbox's recipes); NULL for the base versions.
ALTER TABLE entities ADD COLUMN kitchen text;
CREATE INDEX entities_kitchen ON entities (kitchen) WHERE kitchen IS NOT NULL AND NOT deleted;
