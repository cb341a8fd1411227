-- The kitchen a record's version applies in (a sandbox's recipes); NULL for the base versions.
ALTER TABLE registry ADD COLUMN kitchen text;
