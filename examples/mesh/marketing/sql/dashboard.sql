CREATE SCHEMA IF NOT EXISTS marketing${params.target_schema_suffix};
CREATE TABLE IF NOT EXISTS marketing${params.target_schema_suffix}.revenue_dashboard (
    day date PRIMARY KEY,
    ordered numeric(12, 2) NOT NULL,
    settled numeric(12, 2) NOT NULL,
    gap numeric(12, 2) NOT NULL
);
INSERT INTO marketing${params.target_schema_suffix}.revenue_dashboard (day, ordered, settled, gap)
SELECT day, ordered, settled, ordered - settled FROM finance${params.target_schema_suffix}.revenue
WHERE day = '${params.day}'::date
ON CONFLICT (day) DO UPDATE SET ordered = excluded.ordered, settled = excluded.settled,
    gap = excluded.gap;
