-- Run-once keys are scoped to (domain, recipe, kitchen): a repeated key is answered with the
-- run it first started (`duplicate_of` on the repeat's row). Expired keyed join windows are
-- listed as runs of status `join-expired`, whose `reason` names what arrived and what did not.
ALTER TABLE runs ADD COLUMN idempotency_key text;
ALTER TABLE runs ADD COLUMN duplicate_of uuid;
CREATE INDEX runs_idempotency_key ON runs (domain, recipe, kitchen, idempotency_key)
    WHERE idempotency_key IS NOT NULL AND duplicate_of IS NULL;
