-- Public keys of a principal (base64 Ed25519), published with its grant; messages it
-- signs are verified against them.
ALTER TABLE grants ADD COLUMN keys jsonb NOT NULL DEFAULT '[]';
