-- The registry view's generation: one more with every change written to it, in the same
-- statement, so a reader's snapshot sees the number that goes with what it reads. A
-- fingerprint of count(*) and max(updated_at) missed a change whose transaction began
-- before another's and committed after it (updated_at is its transaction's start).
CREATE TABLE registry_generation (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    n bigint NOT NULL
);
INSERT INTO registry_generation (n) VALUES (0);
