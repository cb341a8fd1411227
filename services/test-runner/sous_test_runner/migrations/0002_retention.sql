-- Retention (sous_common.retention): find old measurements by age.
CREATE INDEX test_history_measured_at ON test_history (measured_at);
